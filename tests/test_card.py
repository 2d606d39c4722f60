"""The model card: README.md of a saved model folder, written by train and by evaluate --update-card."""

import hashlib
import json
import re
import shutil

import yaml

from conftest import one_line_error, run_cli, write_csv


def front_matter(card: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", card, re.S)
    assert match, card[:200]
    return yaml.safe_load(match.group(1))


def digests(folder) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_training_writes_a_card_with_front_matter_rare_intents_first_and_intervals(trained_run):
    card = (trained_run / "model" / "README.md").read_text(encoding="utf-8")
    report = json.loads((trained_run / "report.json").read_text())
    front = front_matter(card)
    assert front["library_name"] == "transformers" and front["pipeline_tag"] == "text-classification"
    assert {"intentbal", "text-classification", "intent-classification"} <= set(front["tags"])
    assert "base_model" not in front, "the tiny model is a local folder, not a Hub name"
    metrics = {m["name"]: m["value"] for m in front["model-index"][0]["results"][0]["metrics"]}
    assert metrics["accuracy"] == round(report["summary"]["accuracy"], 4)
    assert metrics["macro-F1"] == round(report["summary"]["macro_f1"], 4)

    rows = [line.split("|")[1].strip() for line in card.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip() in {r["intent"] for r in report["intents"]}]
    assert rows == [r["intent"] for r in report["intents"]]  # the report's order: rarest first
    counts = json.loads((trained_run / "model" / "intentbal.json").read_text())["train_counts"]
    seen = [i for i in rows if i in counts]
    assert [counts[i] for i in seen] == sorted(counts[i] for i in seen) and seen[0] == "fraud"
    for r in report["intents"]:
        if r["recall_ci"] is not None:
            assert f"| {r['recall']:.3f} | {r['recall_ci'][0]:.2f}-{r['recall_ci'][1]:.2f} |" in card, r["intent"]

    for snippet in ("import intentbal\nfrom transformers import pipeline", "trust_remote_code=True",
                    "IntentClassifier.load(", "intentbal export --model"):
        assert snippet in card, snippet
    for row in ("| epochs | 15 |", "| learning rate | 0.003 |", "| class weighting of the loss | inverse |",
                "| max length | 32 tokens", "rare intents raised to 6 examples |"):
        assert row in card, row
    assert "| logit adjustment tau | " in card
    limitations = card.split("## Limitations", 1)[1]
    assert "measured on `eval.csv`" in limitations and str(trained_run.parent) not in card  # a name, not a path
    assert "greeting" in limitations  # in the eval data, never seen in training
    assert "Too little evidence" in limitations and "fraud" in limitations


def test_card_of_a_hub_model_without_evaluation():
    from intentbal.config import load_config
    from intentbal.model.record import ModelRecord, TauRecord, portable
    from intentbal.reports.card import model_card

    config = load_config(overrides=["model.name_or_path=sentence-transformers/all-MiniLM-L6-v2", "model.head=standard"])
    record = ModelRecord(config=portable(config), train_counts={"a": 2, "b": 40, "c": 60}, max_length=64,
                         logit_adjustment=TauRecord(tau=1.0, chosen_on="default"))
    card = model_card(name="bot", record=record, report=None, eval_name=None, rare_max=10, frequent_min=50)
    front = front_matter(card)
    assert front["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and "model-index" not in front
    assert "trained on 102 examples of 3 intents" in card and "imbalance ratio 30.0" in card
    assert "1 rare (at most 10 examples), 1 medium, 1 frequent" in card
    table = [line for line in card.splitlines() if re.match(r"\| [abc] \|", line)]
    assert table == ["| a | rare | 2 | 2 |", "| b | medium | 40 | 40 |", "| c | frequent | 60 | 60 |"]
    assert "trust_remote_code" not in card and "import intentbal\n" not in card  # a plain folder
    assert "it was not evaluated" in card


def test_the_card_names_a_base_model_only_for_hub_names(tiny_model):
    from intentbal.config import load_config
    from intentbal.model.record import ModelRecord, portable

    def base(name: str) -> object:
        config = portable(load_config(overrides=[f"model.name_or_path={name}"]))
        return ModelRecord(config=config, max_length=64).settings()["base_model"]

    assert base(str(tiny_model)) is None
    assert base("bert-base-uncased") == "bert-base-uncased"


def test_evaluate_update_card_rewrites_only_the_card(trained_run, tmp_path, capsys):
    model = tmp_path / "shop" / "model"
    shutil.copytree(trained_run / "model", model)
    before = digests(model)
    new_eval = write_csv(tmp_path / "new-eval.csv", [("where is my parcel", "track_order"),
                                                     ("refund please", "refund"), ("stolen card", "fraud")])
    assert run_cli("evaluate", "--model", model, "--data", new_eval, "--output", tmp_path / "ev") == 0
    assert digests(model) == before, "without --update-card the model folder is untouched"

    assert run_cli("evaluate", "--model", model, "--data", new_eval, "--output", tmp_path / "ev2",
                   "--update-card") == 0
    after = digests(model)
    assert {k for k in after if after[k] != before.get(k)} == {"README.md"} and set(after) == set(before)
    card = (model / "README.md").read_text(encoding="utf-8")
    report = json.loads((tmp_path / "ev2" / "report.json").read_text())
    assert f"## Evaluation on `{new_eval.name}`" in card and "# shop" in card
    metrics = {m["name"]: m["value"] for m in front_matter(card)["model-index"][0]["results"][0]["metrics"]}
    assert metrics["accuracy"] == round(report["summary"]["accuracy"], 4)
    assert "greeting" not in card, "the old eval data's intents are gone"
    assert not list(model.glob(".*")), "no temporary file left in the model folder"


def test_update_card_of_a_foreign_model_is_refused(tiny_model, tmp_path, toy_csv, capsys):
    model = tmp_path / "foreign"
    shutil.copytree(tiny_model, model)
    assert run_cli("evaluate", "--model", model, "--data", toy_csv, "--output", tmp_path / "ev", "--update-card") == 2
    assert "--update-card" in one_line_error(capsys)
    assert not (tmp_path / "ev").exists() and not (model / "README.md").exists()
