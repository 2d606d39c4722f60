"""Data checks and messages: data that would be silently misread or misjudged is refused or
flagged, and every message says what was expected, what was found and the fix."""

import json

import pytest

from intentbal.config import load_config
from intentbal.data.overlap import normalise, overlap_with_hashes, text_hashes, train_eval_overlap
from intentbal.data.profiling import profile_intents, similar_intents
from intentbal.data.readers import load_intents
from intentbal.errors import IntentbalError
from intentbal.listing import listing

from conftest import TOY, one_line_error, run_cli, set_args, toy_rows, write_csv


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model):
    """A trained run whose eval data repeats two training texts (one exactly, one up to case)."""
    folder = tmp_path_factory.mktemp("checks")
    train = write_csv(folder / "train.csv", toy_rows())
    evals = write_csv(folder / "eval.csv", [("where is my order", "track_order"),
                                             ("Reset my password!", "password"),
                                             ("my card was stolen", "fraud"), ("refund me now", "refund")])
    overrides = [f"model.name_or_path={tiny_model}", "model.max_length=32", "train.epochs=3",
                 "train.batch_size=8", "data.validation_fraction=0", "evaluate.plots=true"]
    assert run_cli("train", "--train", train, "--eval", evals, "--output", folder / "run", *set_args(overrides)) == 0
    return folder / "run"


# --- 4: eval and validation data checked against train before training ------------------------

@pytest.mark.parametrize("option", ["--eval", "--validation"])
def test_train_refuses_eval_data_without_a_shared_intent_before_training(
        option, tmp_path, toy_csv, fast_overrides, capsys, monkeypatch):
    from intentbal.training import soup

    def never(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(soup, "train_soup", never)
    other = write_csv(tmp_path / "other.csv", [("book a taxi", "taxi"), ("play a song", "music")])
    assert run_cli("train", "--train", toy_csv, option, other, "--output", tmp_path / "run",
                   *set_args(fast_overrides)) == 2
    err = one_line_error(capsys)
    assert "other.csv" in err and "found none of them (music, taxi)" in err and "intent_column" in err
    assert not (tmp_path / "run").exists()


def test_eval_with_some_unknown_intents_still_trains_and_lists_them(tmp_path, toy_csv, fast_overrides, capsys):
    evals = write_csv(tmp_path / "eval.csv", [("where is my parcel", "track_order"), ("hello", "greeting")])
    assert run_cli("train", "--train", toy_csv, "--eval", evals, "--output", tmp_path / "run",
                   *set_args(fast_overrides + ["train.epochs=1"])) == 0
    assert "eval intents never seen in training: greeting" in capsys.readouterr().out


# --- 5: train/eval overlap ---------------------------------------------------------------------

def test_normalise_and_overlap_on_lists():
    assert normalise("  Where's   my ORDER?! ") == "where s my order"
    train = ["where is my order", "Refund me", "hello"]
    overlap = train_eval_overlap(train, ["where is my order", "refund me!", "REFUND  ME", "new text"],
                                 ["track", "refund", "refund", "refund"])
    assert (overlap.exact, overlap.normalised, overlap.eval_rows) == (1, 3, 4)
    assert overlap.per_intent == {"refund": {"exact": 0, "normalised": 2}, "track": {"exact": 1, "normalised": 1}}
    assert train_eval_overlap(train, ["something else"], ["x"]).normalised == 0
    # the hashes kept in a model folder give the same answer without the texts
    hashes = text_hashes(train)
    assert len(hashes["exact"]) == 3 and all(len(h) == 16 for h in hashes["exact"])
    assert overlap_with_hashes(hashes, ["where is my order", "refund me!"], ["track", "refund"]).normalised == 2


def test_profile_reports_overlap_with_eval(tmp_path, toy_csv, capsys):
    evals = write_csv(tmp_path / "eval.csv", [("Refund this purchase.", "refund"), ("reset my password", "password"),
                                              ("brand new words", "refund")])
    assert run_cli("profile", toy_csv, "--eval", evals, "--output", tmp_path / "p.json") == 0
    out = capsys.readouterr().out
    assert "warning: 2 of 3 eval row(s) are also training rows (1 exact, 2 after normalising" in out
    assert "password 1, refund 1" in out
    profile = json.loads((tmp_path / "p.json").read_text())
    assert profile["overlap"]["exact"] == 1 and profile["overlap"]["normalised"] == 2
    assert profile["overlap"]["per_intent"]["refund"] == {"exact": 0, "normalised": 1}
    assert run_cli("profile", toy_csv, "--output", tmp_path / "q.json") == 0
    assert json.loads((tmp_path / "q.json").read_text())["overlap"] is None


def test_train_and_evaluate_report_overlap(run_dir, tmp_path, capsys):
    report = json.loads((run_dir / "report.json").read_text())
    overlap = report["summary"]["overlap"]
    assert (overlap["exact"], overlap["normalised"], overlap["eval_rows"]) == (1, 2, 4)
    assert set(overlap["per_intent"]) == {"track_order", "password"}
    assert "2 of 4 eval row(s) are also training rows" in (run_dir / "report.md").read_text()
    assert "2 of 4 eval row(s) are also training rows" in (run_dir / "report.html").read_text()
    meta = json.loads((run_dir / "model" / "intentbal.json").read_text())
    assert len(meta["train_text_sha1"]["normalised"]) == len(toy_rows())
    assert not any(text in json.dumps(meta) for text, _ in toy_rows())  # hashes, never the texts
    # evaluate compares with the training texts through those hashes
    evals = write_csv(tmp_path / "e.csv", [("Where is my ORDER", "track_order"), ("my card was stolen", "fraud")])
    capsys.readouterr()
    assert run_cli("evaluate", "--model", run_dir / "model", "--data", evals, "--output", tmp_path / "ev") == 0
    assert "warning: 1 of 2 eval row(s) are also training rows (0 exact, 1 after" in capsys.readouterr().out
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["summary"]["overlap"]["normalised"] == 1


# --- 7: audit --baseline and compare need shared intents, and say what they compared ----------

def _report(path, recalls):
    rows = [{"intent": i, "support": 10, "recall": r, "train_count": 5} for i, r in recalls.items()]
    path.write_text(json.dumps({"summary": {}, "intents": rows}))
    return path


def test_compare_refuses_unrelated_reports_and_names_the_scope(tmp_path, capsys):
    a = _report(tmp_path / "a.json", {"x": 0.9, "y": 0.8})
    b = _report(tmp_path / "b.json", {"p": 0.9, "q": 0.8})
    assert run_cli("compare", a, b) == 2
    err = one_line_error(capsys)
    assert "found none in common" in err and "x, y" in err and "p, q" in err
    c = _report(tmp_path / "c.json", {"x": 0.9, "z": 0.5})
    assert run_cli("compare", a, c) == 0
    out = capsys.readouterr().out
    assert "1 shared intent(s), 0 regression(s); only in A (1): y; only in B (1): z" in out


def test_audit_baseline_refused_without_shared_intents_and_scope_printed(run_dir, tmp_path, capsys):
    evals = write_csv(tmp_path / "e.csv", [(t, i) for i, texts in TOY.items() for t in texts[:3]])
    other = _report(tmp_path / "other.json", {"taxi": 0.9, "music": 0.8})
    args = ["audit", "--model", run_dir / "model", "--data", evals, "--min-recall", "0"]
    assert run_cli(*args, "--baseline", other) == 2
    assert "found none in common" in one_line_error(capsys)
    same = _report(tmp_path / "same.json", {"refund": 0.0, "fraud": 0.0, "taxi": 0.5})
    assert run_cli(*args, "--baseline", same) == 0
    out = capsys.readouterr().out
    assert f"compared with baseline {same}: 2 shared intent(s), 0 regression(s); only in the baseline (1): taxi" in out
    assert "only in this report (2): password, track_order" in out


# --- 8: intents that are not names ------------------------------------------------------------

def test_rasa_intent_without_a_name_is_refused_with_its_line(tmp_path):
    (tmp_path / "nlu.yml").write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n'
                                      "- intent:\n  examples: |\n    - bye\n")
    with pytest.raises(IntentbalError, match=r"nlu.yml:6: expected an intent name after 'intent:', found an empty one"):
        load_intents(tmp_path / "nlu.yml")


def test_jsonl_intent_that_is_a_list_is_refused(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "hi", "intent": "greet"}\n{"text": "yo", "intent": ["greet", "x"]}\n')
    with pytest.raises(IntentbalError, match=r"d.jsonl:2: expected the intent as a string, found a JSON list"):
        load_intents(tmp_path / "d.jsonl")


# --- 9: messages that send users the right way -------------------------------------------------

def test_yaml_syntax_errors_name_line_and_column(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("train:\n  epochs: 3\n   batch_size: [8\n")
    assert run_cli("profile", "x.csv", "--config", tmp_path / "bad.yaml") == 2
    err = one_line_error(capsys)
    assert "bad.yaml:3:" in err and "YAML syntax error" in err and "UTF-8" not in err
    (tmp_path / "nlu.yml").write_text("nlu:\n- intent: greet\n  examples: |\n    - hi\n  - : [\n")
    with pytest.raises(IntentbalError, match=r"nlu.yml:\d+:\d+: YAML syntax error"):
        load_intents(tmp_path / "nlu.yml")
    (tmp_path / "latin.yaml").write_bytes(b"seed: 1\n# caf\xe9\n")
    with pytest.raises(IntentbalError, match=r"latin.yaml:2: not valid UTF-8 \(byte 0xe9\)"):
        load_config(tmp_path / "latin.yaml")


def test_onnx_message_lists_missing_packages_once(monkeypatch):
    import importlib.util

    from intentbal.inference import backends as runtime

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(IntentbalError) as info:
        runtime.require("onnx", "onnxruntime")
    message = str(info.value)
    assert "expected the package(s) onnx, onnxruntime installed, found only onnxruntime installed " \
           "(missing: onnx); pip install intentbal[onnx]" in message


@pytest.mark.parametrize("key, guess", [("train.epoch=3", "train.epochs"), ("trian.epochs=3", "train"),
                                        ("evaluate.min_suport=3", "evaluate.min_support")])
def test_mistyped_config_key_suggests_the_nearest(key, guess):
    with pytest.raises(IntentbalError, match=f"did you mean '{guess}'"):
        load_config(overrides=[key])
    with pytest.raises(IntentbalError) as info:
        load_config(overrides=["train.zzzz=3"])
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize("suffix, body, looks, fix", [
    (".csv", "text;intent\nhi;greet\nbye;leave\n", "semicolon", "re-save it with commas"),
    (".csv", "text\tintent\nhi\tgreet\nbye\tleave\n", "tab", "rename it to .tsv"),
    (".tsv", "text,intent\nhi,greet\nbye,leave\n", "comma", "re-save it with tabs or rename it to .csv"),
])
def test_wrong_separator_is_named(tmp_path, capsys, suffix, body, looks, fix):
    path = tmp_path / f"data{suffix}"
    path.write_text(body)
    assert run_cli("profile", path, "--output", tmp_path / "p.json") == 2
    err = one_line_error(capsys)
    assert f"looks {looks}-separated" in err and fix in err and "expected a text column" not in err


def test_run_folder_as_model_hints_its_model_folder(run_dir, tmp_path, capsys):
    evals = write_csv(tmp_path / "e.csv", [("where is my order", "track_order")])
    assert run_cli("evaluate", "--model", run_dir, "--data", evals, "--output", tmp_path / "ev") == 2
    assert f"found a run folder with the model in {run_dir / 'model'}; pass --model {run_dir / 'model'}" in \
        one_line_error(capsys)


def test_intents_differing_only_by_case_or_separators_are_flagged():
    assert similar_intents(["Refund", "refund", "card_lost", "card lost", "Card-Lost", "other"]) == [
        ["Card-Lost", "card lost", "card_lost"], ["Refund", "refund"]]
    p = profile_intents(["a", "b", "c", "d"], ["Refund", "refund", "x", "x"], min_count=1)
    assert any("differ only by case" in w and "'Refund'/'refund'" in w for w in p.warnings)
    assert p.similar_intents == [["Refund", "refund"]]
    clean = profile_intents(["a", "b"], ["refund", "x"], eval_intents=["x"], min_count=1)
    assert clean.warnings == [] and clean.similar_intents == []


# --- 10: long lists of intents are cut on the terminal -----------------------------------------

def test_listing_cuts_long_lists():
    assert listing(["a", "b"]) == "a, b"
    assert listing([f"i{n}" for n in range(208)], see="profile.json") == \
        "i0, i1, i2, i3, i4 and 203 more; see profile.json"


def test_a_thousand_intents_give_short_warning_lines(tmp_path, capsys):
    rows = [(f"text {n} {k}", f"intent_{n:04d}") for n in range(1000) for k in range(1 + (n % 7 == 0) * 5)]
    evals = write_csv(tmp_path / "eval.csv",
                      [("new", f"unseen_{n}") for n in range(300)] + [("text 1 0", "intent_0001")])
    train = write_csv(tmp_path / "t.csv", rows)
    assert run_cli("profile", train, "--eval", evals, "--output", tmp_path / "p.json") == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3 and all(len(line) < 300 for line in warnings), warnings
    assert "and 852 more; see profile.json" in warnings[0]
    profile = json.loads((tmp_path / "p.json").read_text())
    assert len(profile["eval_only_intents"]) == 300
