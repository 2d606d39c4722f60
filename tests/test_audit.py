"""The audit: gate exit codes, regressions, comparison, cross-validation, fallback and the HTML."""

import json
import math
import re
import shutil
import subprocess
from collections import Counter

import numpy as np
import pytest

from intentbal.data.splits import fold_assignment
from intentbal.evaluation.fallback import analyse_fallback, choose_threshold
from intentbal.evaluation.gate import audit_report, compare_reports, two_proportion_p
from intentbal.evaluation.metrics import evaluate_predictions

from conftest import TOY, run_cli, set_args, toy_rows, write_csv


def report_of(gold, pred, counts, **kw):
    return evaluate_predictions(gold, pred, train_counts=counts, **kw).to_dict()


# --- pure pieces ------------------------------------------------------------------------------

def test_two_proportion_test_by_hand():
    # 30/40 vs 20/40: pooled p = 0.625, se = sqrt(.625 * .375 * (2/40)), z = -0.25 / se
    se = math.sqrt(0.625 * 0.375 * (2 / 40))
    z = (20 / 40 - 30 / 40) / se
    lower, higher = two_proportion_p(30, 40, 20, 40)
    assert lower == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)))
    assert lower == pytest.approx(0.01046, abs=1e-4)  # z = -2.309
    assert higher == pytest.approx(1 - lower)
    assert two_proportion_p(5, 5, 5, 5) == (1.0, 1.0)
    assert two_proportion_p(1, 0, 1, 1) is None


def test_audit_fails_only_on_intervals_wholly_under_the_threshold():
    gold = ["a"] * 20 + ["b"] * 20 + ["c"] * 3
    pred = ["a"] * 20 + ["b"] * 9 + ["a"] * 11 + ["a"] * 3
    counts = {"a": 50, "b": 10, "c": 2}
    report = report_of(gold, pred, counts, recall_threshold=0.6)  # b: 9/20, interval 0.26-0.66
    result = audit_report(report)
    assert result.passed and result.at_risk == ["b"] and result.insufficient_evidence == ["c"]
    strict = audit_report(report_of(gold, pred, counts, recall_threshold=0.7))  # 0.66 < 0.7: fails
    assert not strict.passed and strict.failing == ["b"]
    tail = audit_report(report, min_tail_recall=0.5)  # tail = [c] with recall 0
    assert not tail.passed and tail.tail_failed


def test_regression_against_a_baseline_needs_significance():
    counts = {"a": 50, "b": 10}
    old = report_of(["a"] * 40 + ["b"] * 40, ["a"] * 40 + ["b"] * 36 + ["a"] * 4, counts)
    slightly = report_of(["a"] * 40 + ["b"] * 40, ["a"] * 40 + ["b"] * 33 + ["a"] * 7, counts)
    much = report_of(["a"] * 40 + ["b"] * 40, ["a"] * 40 + ["b"] * 20 + ["a"] * 20, counts)
    assert audit_report(slightly, baseline=old).passed
    result = audit_report(much, baseline=old)
    assert not result.passed and [c.intent for c in result.regressions] == ["b"]
    assert "two-proportion z-test" in result.reasons[0]


def test_the_gate_reads_a_report_and_its_json_alike():
    gold = ["a"] * 20 + ["b"] * 20 + ["c"] * 3
    pred = ["a"] * 20 + ["b"] * 9 + ["a"] * 11 + ["a"] * 3
    counts = {"a": 50, "b": 10, "c": 2}
    typed = evaluate_predictions(gold, pred, train_counts=counts, recall_threshold=0.7)
    old = report_of(gold, ["a"] * 20 + ["b"] * 20 + ["c"] * 3, counts)
    on_report = audit_report(typed, min_tail_recall=0.5, baseline=old)
    on_json = audit_report(json.loads(json.dumps(typed.to_dict())), min_tail_recall=0.5, baseline=old)
    assert on_report == on_json
    assert on_report.failing == ["b"] and on_report.tail_failed
    assert [c.intent for c in on_report.regressions] == ["c", "b"]  # rarest first


def test_compare_lists_intents_of_either_report():
    a = report_of(["a", "b"], ["a", "b"], {"a": 5, "b": 5})
    b = report_of(["a", "c"], ["a", "a"], {"a": 5, "c": 1})
    changes = {c.intent: c for c in compare_reports(a, b)}
    assert set(changes) == {"a", "b", "c"}
    assert changes["b"].recall_b is None and changes["b"].verdict() == "n/a"
    assert changes["a"].difference == 0.0


def test_fold_assignment_keeps_every_example_of_small_intents_in_distinct_folds():
    intents = ["big"] * 23 + ["two"] * 2 + ["one"]
    folds = fold_assignment(intents, folds=5, seed=0)
    by_intent = {}
    for intent, fold in zip(intents, folds):
        by_intent.setdefault(intent, []).append(fold)
    assert len(set(by_intent["two"])) == 2
    assert sorted(Counter(by_intent["big"]).values()) == [4, 4, 5, 5, 5]
    assert fold_assignment(intents, folds=5, seed=0) == folds


def test_fallback_cost_and_threshold_choice():
    gold = ["a", "a", "a", "b", "b", "oos", "oos"]
    pred = ["a", "a", "b", "b", "a", "a", "b"]
    conf = [0.9, 0.4, 0.3, 0.8, 0.35, 0.2, 0.45]
    f = analyse_fallback(gold, pred, conf, threshold=0.5, chosen_on="given", oos_label="oos")
    rows = {r["intent"]: r for r in f.per_intent}
    assert rows["a"]["recall"] == pytest.approx(2 / 3)
    assert rows["a"]["recall_at_threshold"] == pytest.approx(1 / 3)
    assert rows["a"]["correct_lost"] == pytest.approx(0.5)
    assert rows["b"]["correct_lost"] == 0.0
    assert f.correct_sent_to_fallback == pytest.approx(1 / 3)
    assert f.oos_recall == 1.0 and f.answered_accuracy == 1.0
    # with out-of-scope rows: the best balance of in-scope and out-of-scope recall
    t = choose_threshold(gold, pred, conf, oos_label="oos")
    assert 0.45 < t <= 0.8
    # without: the lowest threshold whose answered predictions are 95% right
    assert choose_threshold(gold[:5], pred[:5], conf[:5], target_precision=0.95) == pytest.approx(0.36)


# --- through the CLI --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("audit") / "run"
    train = write_csv(out.parent / "train.csv", toy_rows())
    sets = set_args([f"model.name_or_path={tiny_model}", "train.epochs=40", "train.batch_size=8",
                     "train.learning_rate=0.003", "model.max_length=32"])
    assert run_cli("train", "--train", train, "--output", out, *sets) == 0
    return out / "model"


@pytest.fixture
def eval_file(tmp_path):
    rows = [(t, i) for i, texts in TOY.items() for t in texts[:5]] + [("please book a taxi", "oos")] * 2
    return write_csv(tmp_path / "eval.csv", rows)


@pytest.mark.slow  # trains the 40-epoch model_dir through the CLI
def test_audit_exit_codes(model_dir, eval_file, tmp_path, capsys):
    assert run_cli("audit", "--model", model_dir, "--data", eval_file, "--min-recall", "0.0") == 0
    assert "AUDIT PASSED" in capsys.readouterr().out
    assert run_cli("audit", "--model", model_dir, "--data", eval_file, "--min-recall", "1.0",
               "--min-tail-recall", "1.0") == 1
    assert "AUDIT FAILED" in capsys.readouterr().out
    assert run_cli("audit", "--model", model_dir, "--data", tmp_path / "missing.csv") == 2
    with pytest.raises(SystemExit) as info:
        run_cli("audit", "--model", model_dir, "--data", eval_file, "--min-recall", "1.5")
    assert info.value.code == 2
    (tmp_path / "bad.json").write_text("{}")
    assert run_cli("audit", "--model", model_dir, "--data", eval_file, "--baseline", tmp_path / "bad.json") == 2
    assert "expected an intentbal report.json" in capsys.readouterr().err


@pytest.mark.slow  # uses model_dir (40 epochs)
def test_audit_with_baseline_and_compare(model_dir, eval_file, tmp_path, capsys):
    assert run_cli("audit", "--model", model_dir, "--data", eval_file, "--min-recall", "0",
               "--output", tmp_path / "now") == 0
    now = json.loads((tmp_path / "now" / "report.json").read_text())
    assert run_cli("audit", "--model", model_dir, "--data", eval_file, "--min-recall", "0",
               "--baseline", tmp_path / "now" / "report.json") == 0, "no change is no regression"
    # 'oos' is unseen in training, so its recall is 0 now; a baseline that got both right regressed
    better = json.loads(json.dumps(now))
    oos = next(r for r in better["intents"] if r["intent"] == "oos")
    assert oos["support"] == 2 and oos["recall"] == 0.0
    oos["recall"] = 1.0
    (tmp_path / "old.json").write_text(json.dumps(better))
    capsys.readouterr()
    assert run_cli("audit", "--model", model_dir, "--data", eval_file, "--min-recall", "0",
               "--baseline", tmp_path / "old.json") == 1
    assert "regression: oos 1.000 -> 0.000" in capsys.readouterr().out
    assert run_cli("compare", tmp_path / "old.json", tmp_path / "now") == 0
    out = capsys.readouterr().out
    assert "recall A" in out and "significantly worse in B: oos" in out


@pytest.mark.slow  # uses model_dir (40 epochs)
def test_evaluate_writes_html_plots_and_fallback_with_oos(model_dir, eval_file, tmp_path):
    out = tmp_path / "ev"
    assert run_cli("evaluate", "--model", model_dir, "--data", eval_file, "--output", out,
               "--set", "data.oos_label=oos") == 0
    report = json.loads((out / "report.json").read_text())
    assert "oos" not in {r["intent"] for r in report["intents"]}
    assert report["summary"]["n"] == 5 + 5 + 4 + 3
    fallback = report["fallback"]
    assert fallback["chosen_on"] == "eval" and fallback["oos_recall"] is not None
    assert {p["intent"] for p in fallback["per_intent"]} == set(TOY)
    for row in report["intents"]:
        assert len(row["recall_ci"]) == 2 and row["status"] in {"pass", "at_risk", "fail", "insufficient_evidence"}
        assert row["roc_auc"] is not None
    for name in ("recall_vs_count", "confusions", "pr_rare", "fallback"):
        assert (out / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "<table>" in page and "fraud" in page
    assert not re.search(r"(src|href)=['\"]https?:", page), "self-contained: nothing loaded from outside"
    curve = json.loads((out / "fallback_curve.json").read_text())
    assert len(curve["thresholds"]) == len(curve["in_scope_recall"]) == 101


@pytest.mark.slow  # trains 8 models
def test_cv_keeps_intents_with_fewer_examples_than_folds(tmp_path, tiny_model, capsys):
    rows = toy_rows() + [("gift card balance please", "gift_card"), ("how much is on my gift card", "gift_card"),
                         ("talk to a human", "agent")]
    data = write_csv(tmp_path / "d.csv", rows)
    sets = set_args([f"model.name_or_path={tiny_model}", "train.epochs=5", "train.batch_size=8"])
    assert run_cli("cv", "--train", data, "--folds", "4", "--repeats", "2", "--output", tmp_path / "cv", *sets) == 0
    report = json.loads((tmp_path / "cv" / "report.json").read_text())
    rows_by = {r["intent"]: r for r in report["intents"]}
    assert rows_by["gift_card"]["support"] == 4  # 2 examples, each held out once per repeat
    assert rows_by["agent"]["support"] == 2 and rows_by["agent"]["recall"] is not None
    assert rows_by["fraud"]["support"] == 6
    assert {k: report["cv"][k] for k in ("folds", "repeats", "models")} == {"folds": 4, "repeats": 2, "models": 8}
    assert len(report["cv"]["taus"]) == 8
    assert "pooled over 8 models" in capsys.readouterr().out


def test_cv_needs_two_folds(toy_csv, capsys):
    assert run_cli("cv", "--train", toy_csv, "--folds", "1") == 2
    assert "expected at least 2 folds" in capsys.readouterr().err


@pytest.mark.slow  # uses model_dir (40 epochs) and starts Chromium
def test_html_renders_in_headless_chromium(model_dir, eval_file, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    out = tmp_path / "ev"
    assert run_cli("evaluate", "--model", model_dir, "--data", eval_file, "--output", out) == 0
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600",
                    f"--screenshot={shot}", (out / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape == (1600, 1200)
    assert image.std() > 20, "the page drew text and figures, not a blank screen"
