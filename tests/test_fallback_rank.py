"""The fallback threshold saved with a model, the top-k ranking, and out-of-scope data."""

import csv
import json

import numpy as np
import pytest

from conftest import OOS, one_line_error, oos_rows, run_cli, set_args, toy_rows, write_csv


def _meta(run):
    return json.loads((run / "model" / "intentbal.json").read_text())


def _csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def texts_csv(tmp_path):
    rows = [("where is my parcel",), ("refund please",), ("reset my password",), ("tell me a joke",),
            ("my card was stolen",)]
    with open(tmp_path / "texts.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text",), *rows])
    return tmp_path / "texts.csv"


def test_threshold_chosen_on_out_of_scope_validation_is_saved_and_reported(oos_run):
    fallback = _meta(oos_run)["fallback"]
    report = json.loads((oos_run / "report.json").read_text())
    assert fallback == {"threshold": report["fallback"]["threshold"], "chosen_on": "validation",
                        "intent": "nlu_fallback"}
    assert report["fallback"]["deployable"] is True
    summary = report["summary"]
    assert summary["oos_examples"] == len(OOS)
    assert summary["fallback_threshold"] == fallback["threshold"]
    assert summary["oos_caught"] == report["fallback"]["oos_recall"]
    assert "oos" not in {r["intent"] for r in report["intents"]}


def test_terminal_report_says_in_scope_and_what_the_fallback_catches(oos_run, tmp_path, capsys):
    held = write_csv(tmp_path / "held.csv", oos_rows())
    assert run_cli("evaluate", "--model", oos_run / "model", "--data", held, "--output", tmp_path / "ev",
                   "--set", "data.oos_label=oos", "--set", "evaluate.plots=false") == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    threshold, caught = report["fallback"]["threshold"], report["fallback"]["oos_recall"]
    assert report["fallback"]["chosen_on"] == "model"  # no --validation: the threshold saved with it
    assert f"in-scope accuracy {report['summary']['accuracy']:.3f}" in out
    assert f"fallback threshold {threshold:.2f} catches {caught:.1%} of {len(OOS)} out-of-scope inputs" in out
    assert "eval intents never seen in training" not in out

    assert run_cli("evaluate", "--model", oos_run / "model", "--data", held, "--output", tmp_path / "ev2",
                   "--set", "evaluate.plots=false") == 0
    out = capsys.readouterr().out
    assert "in-scope accuracy" not in out and "out of scope" not in out  # without data.oos_label, oos is an intent


def test_report_html_says_the_threshold_came_with_the_model(oos_run, tmp_path):
    held = write_csv(tmp_path / "held.csv", oos_rows())
    assert run_cli("evaluate", "--model", oos_run / "model", "--data", held, "--output", tmp_path / "ev",
                   "--set", "data.oos_label=oos") == 0
    assert "saved with the model" in (tmp_path / "ev" / "report.html").read_text()


@pytest.mark.parametrize("extra, saved", [([], None), (["evaluate.fallback_threshold=0.6"], "given")])
def test_threshold_saved_only_when_given_or_chosen_on_out_of_scope(tmp_path, toy_csv, fast_overrides, capsys,
                                                                   extra, saved):
    eval_csv = write_csv(tmp_path / "eval.csv", [r for r in oos_rows() if r[1] != "oos"])
    out = tmp_path / "run"
    overrides = [*fast_overrides, "train.epochs=2", "evaluate.plots=false", *extra]
    assert run_cli("train", "--train", toy_csv, "--eval", eval_csv, "--output", out, *set_args(overrides)) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    meta = _meta(out)
    if saved is None:  # the report still prices a threshold chosen on in-scope data, but the model keeps none
        assert report["fallback"]["chosen_on"] == "eval" and report["fallback"]["deployable"] is False
        assert meta["fallback"] is None and "saved with the model" not in printed
    else:
        assert meta["fallback"] == {"threshold": 0.6, "chosen_on": "given", "intent": "nlu_fallback"}
        assert "fallback threshold 0.60 saved with the model (given)" in printed


def test_classifier_answers_the_fallback_intent_under_the_threshold(oos_run):
    from intentbal import IntentClassifier

    clf = IntentClassifier.load(oos_run / "model")
    assert clf.fallback_threshold == _meta(oos_run)["fallback"]["threshold"]
    texts = [t for t, _ in toy_rows()] + OOS
    probs = clf.proba(texts)
    raw, confidence = clf.decide(probs)
    clf.fallback_threshold = float(np.median(confidence))
    intents, kept = clf.predict(texts)
    assert kept == pytest.approx(confidence, abs=1e-6)
    assert "nlu_fallback" in intents and set(intents) - {"nlu_fallback"}  # both sides of the threshold
    for intent, original, conf in zip(intents, raw, confidence):
        assert intent == ("nlu_fallback" if conf < clf.fallback_threshold else original)
    clf.fallback_threshold = None
    assert clf.predict(texts)[0] == raw


def test_rank_orders_the_top_k_intents(oos_run):
    from intentbal import IntentClassifier

    clf = IntentClassifier.load(oos_run / "model")
    texts = ["where is my parcel", "tell me a joke"]
    probs = clf.proba(texts)
    ranking = clf.rank(texts, 3)
    assert [len(r) for r in ranking] == [3, 3]
    for row, p in zip(ranking, probs):
        scores = [c for _, c in row]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] == pytest.approx(float(p.max()))
        assert [i for i, _ in row] == [clf.intents[j] for j in np.argsort(-p, kind="stable")[:3]]
    assert [len(r) for r in clf.rank(texts, 99)] == [len(clf.intents)] * 2  # at most every intent


def test_predict_writes_rankings_as_csv_columns_and_jsonl_lists(oos_run, texts_csv, tmp_path):
    from intentbal import IntentClassifier

    clf = IntentClassifier.load(oos_run / "model")
    texts = [r["text"] for r in _csv(texts_csv)]
    expected = clf.rank(texts, 2)
    assert run_cli("predict", "--model", oos_run / "model", "--input", texts_csv, "--output", tmp_path / "p.csv",
                   "--top-k", 2) == 0
    rows = _csv(tmp_path / "p.csv")
    assert list(rows[0]) == ["text", "prediction", "confidence", "intent_1", "confidence_1", "intent_2",
                             "confidence_2"]
    for row, ranked in zip(rows, expected):
        assert [row["intent_1"], row["intent_2"]] == [i for i, _ in ranked]
        assert float(row["confidence_1"]) >= float(row["confidence_2"])
        assert float(row["confidence_1"]) == pytest.approx(ranked[0][1], abs=1e-4)

    assert run_cli("predict", "--model", oos_run / "model", "--input", texts_csv, "--output", tmp_path / "p.jsonl",
                   "--top-k", 3) == 0
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [line["text"] for line in lines] == texts
    for line, ranked in zip(lines, clf.rank(texts, 3)):
        assert [r["intent"] for r in line["ranking"]] == [i for i, _ in ranked]
        assert [r["confidence"] for r in line["ranking"]] == sorted((r["confidence"] for r in line["ranking"]),
                                                                  reverse=True)


def test_predict_fallback_threshold_option_overrides_the_saved_one(oos_run, texts_csv, tmp_path):
    from intentbal import IntentClassifier

    clf = IntentClassifier.load(oos_run / "model")
    texts = [r["text"] for r in _csv(texts_csv)]
    raw, confidence = clf.decide(clf.proba(texts))
    threshold = round(float(np.median(confidence)), 6)
    out = tmp_path / "p.csv"
    assert run_cli("predict", "--model", oos_run / "model", "--input", texts_csv, "--output", out,
                   "--fallback-threshold", threshold) == 0
    predicted = [r["prediction"] for r in _csv(out)]
    assert predicted == [i if c >= threshold else "nlu_fallback" for i, c in zip(raw, confidence)]
    assert "nlu_fallback" in predicted
    assert run_cli("predict", "--model", oos_run / "model", "--input", texts_csv, "--output", out, "--overwrite",
                   "--fallback-threshold", 0, "--set", "evaluate.fallback_intent=other") == 0
    assert [r["prediction"] for r in _csv(out)] == raw


@pytest.mark.parametrize("args, message", [(["--top-k", "0"], "--top-k: expected a whole number of at least 1"),
                                           (["--fallback-threshold", "2"], "expected a number between 0 and 1")])
def test_predict_rejects_bad_options(oos_run, texts_csv, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as info:  # argparse's mistakes exit from the parser
        run_cli("predict", "--model", oos_run / "model", "--input", texts_csv, "--output", tmp_path / "p.csv", *args)
    assert info.value.code == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "p.csv").exists()


def test_out_of_scope_rows_in_training_data_are_refused(tmp_path, fast_overrides, capsys):
    train = write_csv(tmp_path / "train.csv", toy_rows() + [(t, "oos") for t in OOS])
    out = tmp_path / "run"
    args = ["--train", train, "--output", out, *set_args([*fast_overrides, "data.oos_label=oos"])]
    assert run_cli("train", *args) == 2
    err = one_line_error(capsys)
    assert f"found {len(OOS)} with intent 'oos' (data.oos_label)" in err and "validation or eval data" in err
    assert not out.exists()
    assert run_cli("profile", train, "--output", tmp_path / "p.json", "--set", "data.oos_label=oos") == 2
    assert "expected no out-of-scope rows in training data" in one_line_error(capsys)


def test_profile_does_not_call_out_of_scope_missing_from_train(toy_csv, tmp_path, capsys):
    held = write_csv(tmp_path / "held.csv", oos_rows())
    assert run_cli("profile", toy_csv, "--eval", held, "--output", tmp_path / "p.json") == 0
    assert "eval intent(s) missing from train: oos" in capsys.readouterr().out
    assert run_cli("profile", toy_csv, "--eval", held, "--output", tmp_path / "p2.json",
                   "--set", "data.oos_label=oos") == 0
    assert "missing from train" not in capsys.readouterr().out


@pytest.mark.parametrize("given, validation, eval_has_oos, expected", [
    (0.3, "with_oos", True, ("given", True)),
    (None, "with_oos", False, ("validation", True)),
    (None, "in_scope", True, ("eval", True)),  # only the eval data can say what out-of-scope looks like
    (None, "in_scope", False, ("validation", False)),
    (None, None, False, ("eval", False)),
])
def test_where_the_threshold_is_chosen_and_whether_it_may_be_saved(oos_run, given, validation, eval_has_oos,
                                                                    expected):
    from intentbal import IntentClassifier
    from intentbal.config import load_config
    from intentbal.data.types import IntentData
    from intentbal.evaluation.scoring import choose_fallback

    clf = IntentClassifier.load(oos_run / "model")
    clf.fallback_threshold = None  # as a model trained without out-of-scope data
    config = load_config(overrides=["data.oos_label=oos"] + ([f"evaluate.fallback_threshold={given}"] if given else []))
    rows = oos_rows() if eval_has_oos else [r for r in oos_rows() if r[1] != "oos"]
    data = IntentData([t for t, _ in rows], [i for _, i in rows], "eval")
    kept = {"with_oos": oos_rows(), "in_scope": [r for r in oos_rows() if r[1] != "oos"]}.get(validation)
    held = IntentData([t for t, _ in kept], [i for _, i in kept], "validation") if kept else None
    predicted, confidence = clf.decide(clf.proba(data.texts))
    chosen = choose_fallback(config, clf, held, data=data, predicted=predicted, confidence=confidence)
    assert chosen is not None and (chosen.chosen_on, chosen.deployable) == expected
    assert 0 <= chosen.threshold <= 1 and (given is None or chosen.threshold == given)
