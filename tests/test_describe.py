"""Intent names and descriptions as evidence: names read as words, description files, the
starting prototypes they pull, the rows they add, and what a run keeps of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intentbal.config import load_config
from intentbal.data.descriptions import intent_texts, load_descriptions, name_as_text
from intentbal.data.types import IntentData
from intentbal.errors import IntentbalError

from conftest import one_line_error, run_cli, set_args, toy_data, toy_rows, write_csv

FRAUD = "someone used my stolen card without my permission"


@pytest.mark.parametrize(("name", "text"), [
    ("card_arrival", "card arrival"),
    ("lost-or-stolen card", "lost or stolen card"),
    ("lostOrStolenCard", "lost or stolen card"),
    ("Refund_not_showing_up", "refund not showing up"),
    ("getPINCode", "get PIN code"),
    ("top_up_2fa", "top up 2fa"),
    ("are_you_a_bot", "are you a bot"),
    ("faq/ask_name", "faq ask name"),
    ("greeting", "greeting"),
    ("intent_017", None),
    ("intent017", None),
    ("i17", None),
    ("Intent 17", None),
    ("42", None),
    ("a3f9c2e1", None),
    ("3fa85f64-5717-4562-b3fc-2c963f66afa6", None),
])
def test_name_as_text(name, text):
    assert name_as_text(name) == text


def test_a_description_wins_over_the_name_and_off_reads_no_names():
    intents = ["card_arrival", "refund", "intent_017"]
    given = {"refund": "I want my money back"}
    assert intent_texts(intents, descriptions=given, names="auto") == {
        "card_arrival": "card arrival", "refund": "I want my money back"}
    assert intent_texts(intents, descriptions=given, names="off") == given
    assert intent_texts(intents, descriptions=None, names="off") == {}


@pytest.mark.parametrize(("name", "content"), [
    ("d.csv", 'intent,description\nfraud,"Someone used my card, not me"\nrefund,  I want   my money back \n'),
    ("d.yml", "fraud: Someone used my card, not me\nrefund: I want my money back\n"),
    ("d.yaml", "# descriptions\nfraud: 'Someone used my card, not me'\nrefund: >\n  I want my\n  money back\n"),
    ("d.json", '{"fraud": "Someone used my card, not me", "refund": "I want my money back"}'),
])
def test_description_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert load_descriptions(path) == {"fraud": "Someone used my card, not me", "refund": "I want my money back"}


BAD = [
    ("d.csv", "intent,text\nfraud,x\n", ["d.csv:1:", "'intent' and 'description'", "'text'"]),
    ("d.csv", "intent,description\nfraud,card theft\nrefund,\n", ["d.csv:3:", "intent 'refund'", "empty"]),
    ("d.csv", "intent,description\nfraud,a\nfraud,b\n", ["d.csv:3:", "described twice", "d.csv:2"]),
    ("d.csv", "intent,description\nfraud,a,b\n", ["d.csv:2:", "expected 2 fields", "found 3"]),
    ("d.yml", "fraud: card theft\nrefund: [a, b]\n", ["d.yml:2:", "intent 'refund'", "found a list"]),
    ("d.yml", "fraud: card theft\nrefund:\n", ["d.yml:2:", "intent 'refund'", "found an empty one"]),
    ("d.yml", "fraud: card theft\nfraud: again\n", ["d.yml:2:", "described twice"]),
    ("d.yml", "fraud: 'unclosed\n", ["d.yml:", "YAML syntax error"]),
    ("d.yml", "- fraud\n- refund\n", ["d.yml:", "expected a mapping", "found a list"]),
    ("nlu.yml", "nlu:\n- intent: fraud\n  examples: |\n    - stolen card\n", ["nlu.yml:1:", "Rasa NLU", "not nlu.yml"]),
    ("d.json", '["fraud", "card theft"]', ["d.json:", "JSON object", "found an array"]),
    ("d.json", '{"fraud": "a", "fraud": "b"}', ["d.json:", "'fraud'", "described twice"]),
    ("d.json", '{"fraud": {"text": "a"}}', ["d.json:", "intent 'fraud'", "found a dict"]),
    ("d.json", '{"fraud": "a",}', ["d.json:1:", "malformed JSON"]),
    ("d.json", "{}", ["d.json:", "found none"]),
    ("d.txt", "fraud card theft\n", ["d.txt:", ".csv", "found .txt"]),
    ("d.csv", "", ["d.csv:", "empty"]),
]


@pytest.mark.parametrize(("name", "content", "fragments"), BAD)
def test_bad_description_files_are_one_line_errors(tmp_path, capsys, name, content, fragments):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    train = write_csv(tmp_path / "train.csv", toy_rows())
    status = run_cli("train", "--train", train, "--output", tmp_path / "run", "--set", f"data.descriptions={path}")
    assert status == 2
    one_line_error(capsys, *fragments)
    assert capsys.readouterr().out == ""
    assert not (tmp_path / "run").exists()


def test_a_missing_description_file_is_an_error(tmp_path):
    with pytest.raises(IntentbalError, match="expected a descriptions file"):
        load_descriptions(tmp_path / "nope.csv")


def test_unknown_described_intents_are_a_warning_and_undescribed_ones_a_count(tmp_path):
    from intentbal.data.inputs import load_described

    path = tmp_path / "d.yml"
    path.write_text(f"fraud: {FRAUD}\nfruad: a typo\n", encoding="utf-8")
    config = load_config(values={"data.descriptions": path})
    described, warnings = load_described(config, toy_data())
    assert described == {"fraud": FRAUD}
    assert len(warnings) == 2
    assert "1 described intent(s) are not training intents" in warnings[0] and "fruad" in warnings[0]
    assert "3 of 4 training intents have no description" in warnings[1]
    assert "track_order" not in warnings[1]  # a count, not a list


def _initial_vectors(monkeypatch, tiny_model: Path, data: IntentData, **train: object):
    """The prototype head's vectors right after init_prototypes in a one-step fine_tune."""
    from intentbal.training import loop as train_module

    seen = []
    original = train_module.init_prototypes

    def recording(model, *args, **kwargs):
        original(model, *args, **kwargs)
        seen.append(model.classifier.weight.detach().clone())

    monkeypatch.setattr(train_module, "init_prototypes", recording)
    config = load_config(overrides=[f"model.name_or_path={tiny_model}", "model.max_length=32", "train.epochs=0.01",
                                    "train.save_steps=0"], values={f"train.{k}": v for k, v in train.items()})
    result = train_module.fine_tune(data, model_config=config.model, train_config=config.train, seed=0,
                                    descriptions={"fraud": FRAUD})
    return seen[0], result.intents


def _embedding(tiny_model: Path, text: str, intents: list[str]):
    import torch

    from intentbal.config import ModelConfig
    from intentbal.model.loading import load_for_training

    tokenizer, model = load_for_training(ModelConfig(name_or_path=str(tiny_model), max_length=32), intents)
    model.eval()
    batch = tokenizer([text], return_tensors="pt")
    with torch.inference_mode():
        return torch.nn.functional.normalize(model.embed(batch["input_ids"], batch["attention_mask"]), dim=-1)[0]


def test_a_description_pulls_its_rare_intents_starting_vector(monkeypatch, tiny_model):
    import torch

    data = toy_data()
    before, intents = _initial_vectors(monkeypatch, tiny_model, data, description_weight=0.0)
    after, _ = _initial_vectors(monkeypatch, tiny_model, data, description_weight=2.0)
    fraud = intents.index("fraud")
    e_desc = _embedding(tiny_model, FRAUD, intents)
    cos = torch.nn.functional.cosine_similarity
    assert cos(after[fraud], e_desc, dim=0) > cos(before[fraud], e_desc, dim=0) + 1e-3
    others = [i for i in range(len(intents)) if i != fraud]
    assert torch.equal(after[others], before[others])  # only described intents move


def test_weight_0_starts_from_exactly_the_examples_mean(monkeypatch, tiny_model):
    import torch

    from intentbal.config import ModelConfig
    from intentbal.model.encoding import encode, pad_id_of
    from intentbal.model.loading import load_for_training
    from intentbal.model.prototypes import init_prototypes

    data = toy_data()
    with_zero, intents = _initial_vectors(monkeypatch, tiny_model, data, description_weight=0.0)
    monkeypatch.undo()
    tokenizer, model = load_for_training(ModelConfig(name_or_path=str(tiny_model), max_length=32), intents)
    ids, _ = encode(tokenizer, data.texts, 32)
    targets = torch.tensor([intents.index(i) for i in data.intents])
    init_prototypes(model, ids, targets, pad_id=pad_id_of(tokenizer), device=torch.device("cpu"))
    assert torch.equal(with_zero, model.classifier.weight.detach())


def _fit(tiny_model: Path, data: IntentData, *extra: str):
    from intentbal.training.recipe import fit

    config = load_config(overrides=[f"model.name_or_path={tiny_model}", "model.max_length=32", "train.epochs=1",
                                    "train.batch_size=8", "data.validation_fraction=0", *extra])
    return fit(config, data)


def test_description_rows_join_training_with_their_weight(monkeypatch, tiny_model):
    from intentbal.training import soup

    seen = []
    original = soup.train_soup

    def recording(rows, **kwargs):
        seen.append(rows)
        return original(rows, **kwargs)

    monkeypatch.setattr(soup, "train_soup", recording)
    data = toy_data()
    _fit(tiny_model, data, "train.intent_names=auto", "train.description_rows=0.5")
    rows = seen[0]
    assert rows.texts[len(data):] == ["fraud", "password", "refund", "track order"]
    assert rows.intents[len(data):] == ["fraud", "password", "refund", "track_order"]
    assert rows.weights == [1.0] * len(data) + [0.5] * 4


def _renamed(data: IntentData, names: dict[str, str]) -> IntentData:
    return IntentData(data.texts, [names[i] for i in data.intents], data.source)


def test_opaque_intent_ids_change_nothing_with_intent_names_auto(tiny_model):
    import torch

    data = toy_data()
    ids = _renamed(data, {intent: f"intent_{n:03d}" for n, intent in enumerate(sorted(set(data.intents)))})
    reading = ["train.description_weight=2", "train.description_rows=0.5"]
    off = _fit(tiny_model, ids, "train.intent_names=off", *reading).trained.model.state_dict()
    auto = _fit(tiny_model, ids, "train.intent_names=auto", *reading).trained.model.state_dict()
    assert all(torch.equal(off[k], auto[k]) for k in off)
    # the same names made of words are read, so the control can fail
    words = _fit(tiny_model, data, "train.intent_names=auto", *reading).trained.model.state_dict()
    plain = _fit(tiny_model, data, "train.intent_names=off", *reading).trained.model.state_dict()
    assert not torch.equal(words["classifier.weight"], plain["classifier.weight"])


def test_a_run_keeps_its_descriptions_in_intentbal_json_and_the_card(tmp_path, capsys, fast_overrides):
    train = write_csv(tmp_path / "train.csv", toy_rows())
    described = write_csv(tmp_path / "descriptions.csv", [("fraud", FRAUD), ("fruad", "a typo")],
                          header=("intent", "description"))
    overrides = [*fast_overrides, "train.epochs=1", "evaluate.plots=false", f"data.descriptions={described}",
                 "train.description_weight=2"]
    assert run_cli("train", "--train", train, "--output", tmp_path / "run", *set_args(overrides)) == 0
    out = capsys.readouterr().out
    assert "not training intents and are ignored: fruad" in out
    assert "3 of 4 training intents have no description" in out
    meta = json.loads((tmp_path / "run" / "model" / "intentbal.json").read_text(encoding="utf-8"))
    assert meta["descriptions"] == {"fraud": FRAUD}
    assert meta["config"]["train"]["description_weight"] == 2
    card = (tmp_path / "run" / "model" / "README.md").read_text(encoding="utf-8")
    assert f"| fraud | {FRAUD} |" in card
    assert "counts its description as 2 examples" in card


def test_bare_yaml_off_and_on_read_as_intent_names(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("train:\n  intent_names: off\n", encoding="utf-8")
    assert load_config(path).train.intent_names == "off"
    assert load_config(overrides=["train.intent_names=on"]).train.intent_names == "auto"
    with pytest.raises(IntentbalError, match="intent_names"):
        load_config(overrides=["train.intent_names=words"])
