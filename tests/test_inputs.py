"""Inputs users have: Parquet files, Rasa's per-example form, progress on long inputs, a quiet API."""

import csv
import json

import pytest

from conftest import TOY, one_line_error, oos_rows, run_cli, toy_rows, write_csv


def _parquet(path, columns):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def test_parquet_loads_like_csv(tmp_path):
    from intentbal.data.readers import load_intents

    rows = toy_rows()
    path = _parquet(tmp_path / "train.parquet", {"text": [t for t, _ in rows], "label": [i for _, i in rows]})
    data = load_intents(path)
    assert (data.texts, data.intents) == ([t for t, _ in rows], [i for _, i in rows])
    unlabelled = load_intents(_parquet(tmp_path / "t.parquet", {"text": ["hi", "bye"]}), require_intent=False)
    assert unlabelled.texts == ["hi", "bye"] and not unlabelled.labelled


def test_parquet_profile_and_its_mistakes(tmp_path, capsys):
    rows = toy_rows()
    good = _parquet(tmp_path / "good.parquet", {"utterance": [t for t, _ in rows], "intent": [i for _, i in rows]})
    assert run_cli("profile", good, "--output", tmp_path / "p.json", "--set", "data.text_column=utterance") == 0
    assert json.loads((tmp_path / "p.json").read_text())["n_examples"] == len(rows)
    capsys.readouterr()

    assert run_cli("profile", good, "--output", tmp_path / "q.json") == 2
    err = one_line_error(capsys)
    assert "good.parquet: expected a text column 'text', found columns 'utterance', 'intent'" in err
    assert "--set data.text_column=COLUMN" in err

    empty_text = _parquet(tmp_path / "empty.parquet", {"text": ["hi", None], "intent": ["a", "b"]})
    assert run_cli("profile", empty_text, "--output", tmp_path / "q.json") == 2
    assert "empty.parquet row 1: expected a non-empty text" in one_line_error(capsys)

    (tmp_path / "bad.parquet").write_text("text,intent\nhi,a\n")
    assert run_cli("profile", tmp_path / "bad.parquet", "--output", tmp_path / "q.json") == 2
    assert "bad.parquet: not a readable Parquet file" in one_line_error(capsys)
    assert not (tmp_path / "q.json").exists()


def test_predict_reads_parquet(oos_run, tmp_path):
    texts = ["where is my parcel", "refund please"]
    path = _parquet(tmp_path / "in.parquet", {"text": texts})
    assert run_cli("predict", "--model", oos_run / "model", "--input", path, "--output", tmp_path / "p.csv") == 0
    with open(tmp_path / "p.csv", newline="") as f:
        assert [r["text"] for r in csv.DictReader(f)] == texts


RASA_PER_EXAMPLE = """version: "3.1"
nlu:
- intent: track_order
  examples:
  - text: where is my [parcel](item)
    metadata:
      sentiment: neutral
  - text: track my order
- intent: refund
  metadata:
    owner: billing
  examples: |
    - refund me
    - money back please
"""


def test_rasa_per_example_form_loads(tmp_path):
    from intentbal.data.readers import load_intents

    path = tmp_path / "nlu.yml"
    path.write_text(RASA_PER_EXAMPLE, encoding="utf-8")
    data = load_intents(path)
    assert data.texts == ["where is my parcel", "track my order", "refund me", "money back please"]
    assert data.intents == ["track_order", "track_order", "refund", "refund"]


def test_rasa_per_example_item_without_text_is_one_line(tmp_path, capsys):
    path = tmp_path / "nlu.yml"
    path.write_text(RASA_PER_EXAMPLE.replace("  - text: track my order", "  - txt: track my order"), encoding="utf-8")
    assert run_cli("profile", path, "--output", tmp_path / "p.json") == 2
    err = one_line_error(capsys)
    assert "intent 'track_order' example 1: expected '- text: ...'" in err


def test_prediction_reports_progress_by_batch(oos_run, tmp_path):
    from intentbal import IntentClassifier
    from intentbal.commands.evaluate import evaluate_model
    from intentbal.commands.predict import predict_file
    from intentbal.config import load_config

    clf = IntentClassifier.load(oos_run / "model", batch_size=4)
    texts = [t for t, _ in toy_rows()]
    calls = []
    clf.proba(texts, progress=lambda *call: calls.append(call))
    assert calls == [("predict", min(n, len(texts)), len(texts)) for n in range(4, len(texts) + 4, 4)]

    config = load_config(overrides=["evaluate.batch_size=4", "evaluate.plots=false", "data.oos_label=oos"])
    held = write_csv(tmp_path / "held.csv", oos_rows())
    calls.clear()
    evaluate_model(config, model_dir=oos_run / "model", data=held, output=tmp_path / "ev",
                   progress=lambda *call: calls.append(call))
    assert calls[-1] == ("predict", len(oos_rows()), len(oos_rows())) and len(calls) == 3
    calls.clear()
    predict_file(config, model_dir=oos_run / "model", input_path=held, output=tmp_path / "p.csv",
                 progress=lambda *call: calls.append(call))
    assert calls[-1] == ("predict", len(oos_rows()), len(oos_rows()))


def test_progress_bars_stay_off_when_stderr_is_not_a_terminal(oos_run, tmp_path, capsys):
    held = write_csv(tmp_path / "held.csv", oos_rows())
    assert run_cli("predict", "--model", oos_run / "model", "--input", held, "--output", tmp_path / "p.csv",
                   "--set", "evaluate.batch_size=2") == 0
    err = capsys.readouterr().err  # plain log lines, one per phase: no bar, no carriage return
    assert "\r" not in err and "it/s" not in err and "%|" not in err
    assert err.splitlines() == [f"loaded {oos_run / 'model'}: 4 intents",
                                f"predicting {len(oos_rows())} rows of {held}", f"writing {tmp_path / 'p.csv'}"]


@pytest.mark.filterwarnings("ignore:Cannot enable progress bars")  # HF_HUB_DISABLE_PROGRESS_BARS, set for tests
def test_loading_from_python_prints_nothing_and_restores_transformers(oos_run, capfd):
    from transformers.utils import logging as hf_logging

    from intentbal import IntentClassifier

    before = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_info()  # a caller who asked transformers to talk
    hf_logging.enable_progress_bar()
    try:
        clf = IntentClassifier.load(oos_run / "model")
        captured = capfd.readouterr()
        assert captured.err == "" and captured.out == ""
        assert hf_logging.get_verbosity() == hf_logging.INFO and hf_logging.is_progress_bar_enabled()
        assert clf.predict([TOY["refund"][0]])[1][0] > 0
    finally:
        hf_logging.set_verbosity(before[0])
        (hf_logging.enable_progress_bar if before[1] else hf_logging.disable_progress_bar)()
