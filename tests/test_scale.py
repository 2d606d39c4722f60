"""Thousands of intents: metrics that stay exact and fast, a report that stays readable, the scale script."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from intentbal.data.profiling import profile_intents
from intentbal.evaluation.fallback import GRID, analyse_fallback
from intentbal.evaluation.metrics import evaluate_predictions
from intentbal.reports.html import render_html
from intentbal.reports.plots import binned_mean, worst_intents

from conftest import ROOT


def noisy_predictions(intents: int, per_intent: int, seed: int = 0) -> tuple[list[str], list[str], np.ndarray]:
    """Gold intents, predictions (right about 60% of the time) and rounded probabilities (ties)."""
    rng = np.random.default_rng(seed)
    names = [f"i{k:03d}" for k in range(intents)]
    gold = [n for n in names for _ in range(per_intent)]
    probs = np.round(rng.dirichlet(np.ones(intents), len(gold)), 2)
    predicted = [g if rng.random() < 0.6 else names[rng.integers(intents)] for g in gold]
    return gold, predicted, probs


def test_ranking_measures_match_scikit_learn_with_ties():
    gold, predicted, probs = noisy_predictions(40, 7)
    names = [f"i{k:03d}" for k in range(40)]
    report = evaluate_predictions(gold, predicted, train_counts=dict.fromkeys(names, 5), probabilities=probs,
                                  prob_intents=names)
    g = np.asarray(gold)
    for m in report.intents:
        col = names.index(m.intent)
        assert m.roc_auc == pytest.approx(roc_auc_score(g == m.intent, probs[:, col]), abs=1e-12)
        assert m.average_precision == pytest.approx(average_precision_score(g == m.intent, probs[:, col]), abs=1e-12)


def test_confusions_grouped_per_intent():
    gold = ["a", "a", "a", "a", "b", "b", "c"]
    predicted = ["b", "b", "c", "a", "a", "b", "a"]
    rows = {m.intent: m for m in evaluate_predictions(gold, predicted, train_counts={"a": 3, "b": 3, "c": 3}).intents}
    assert rows["a"].confused_with == [["b", 2], ["c", 1]]
    assert rows["a"].confused_from == [["b", 1], ["c", 1]]
    assert rows["c"].confused_with == [["a", 1]] and rows["c"].confused_from == [["a", 1]]


def test_fallback_curve_matches_a_threshold_by_threshold_count():
    rng = np.random.default_rng(3)
    gold = [f"i{x}" if x < 12 else "oos" for x in rng.integers(0, 14, 500)]
    predicted = [g if rng.random() < 0.7 else f"i{rng.integers(12)}" for g in gold]
    confidence = np.round(rng.random(500), 2)  # many confidences fall exactly on a threshold
    result = analyse_fallback(gold, predicted, confidence, threshold=0.4, chosen_on="eval", oos_label="oos")
    g, p = np.asarray(gold), np.asarray(predicted)
    for intent, curve in result.curve["per_intent"].items():
        mine = g == intent
        assert curve == [float(((g == p) & mine & (confidence >= t)).sum() / mine.sum()) for t in GRID]
    lost = {r["intent"]: r["correct_lost"] for r in result.per_intent}
    hits = (g == p) & (g == "i3")
    assert lost["i3"] == pytest.approx((hits & (confidence < 0.4)).sum() / hits.sum())


def test_worst_intents_are_the_lowest_recall_and_their_confusions_within_the_limit():
    gold = ["a"] * 4 + ["b"] * 4 + ["c"] * 4 + ["d"] * 4 + ["e"] * 4
    predicted = (["c", "c", "d", "a"]  # a: recall 0.25, mostly mistaken for c, then d
                 + ["b"] * 4  # b: perfect
                 + ["c", "c", "c", "e"]  # c: 0.75
                 + ["a", "a", "a", "a"]  # d: 0.0
                 + ["e"] * 4)
    assert worst_intents(gold, predicted, limit=30) == ["d", "a", "c", "e", "b"]
    assert worst_intents(gold, predicted, limit=3) == ["d", "a", "c"]
    many_gold, many_pred, _ = noisy_predictions(2000, 3)
    chosen = worst_intents(many_gold, many_pred, limit=30)
    assert len(chosen) == 30 == len(set(chosen))
    recall = {i: sum(p == i for g, p in zip(many_gold, many_pred) if g == i) / 3 for i in set(many_gold)}
    assert recall[chosen[0]] == min(recall.values())


def test_binned_mean_recall_per_log_count_bin():
    centres, means = binned_mean([2, 2, 3, 100, 1000], [0.0, 1.0, 0.5, 0.8, 1.0], bins=3)
    assert means == pytest.approx([0.5, 0.8, 1.0])
    assert centres == sorted(centres) and 2 <= centres[0] < centres[-1] <= 1000


def test_html_table_is_searchable_and_sortable_at_thousands_of_intents():
    gold, predicted, _ = noisy_predictions(2000, 3)
    report = evaluate_predictions(gold, predicted, train_counts={g: 4 for g in gold})
    page = render_html(report, figures={})
    assert "<input type='search' id='intent-filter' data-total='2000'" in page
    assert "2000 of 2000 intents" in page
    assert len(re.findall(r"<th class='\w*' data-sort=", page)) == 14 and "querySelectorAll('th[data-sort]')" in page
    rows = re.findall(r"<tr class='\w+' data-search='([^']*)'>", page)
    assert len(rows) == 2000 and rows[0].startswith(report.intents[0].intent)
    assert "http" not in page  # self-contained: nothing fetched
    assert len(page) < 2_000_000


def test_profile_warnings_stay_one_short_line_each():
    intents = [f"rare_{k:03d}" for k in range(300) for _ in range(2)] + ["big"] * 50
    texts = [f"text {k}" for k in range(len(intents))]
    texts[:40] = ["help"] * 40  # one generic text under 20 intents
    warnings = profile_intents(texts, intents).warnings
    few = next(w for w in warnings if "fewer than" in w)
    assert few.startswith("300 intent(s) with fewer than 5 examples: rare_000, rare_001,")
    assert " and 295 more" in few and len(few) < 250
    assert "'help' appears under 20 intents" in warnings[-1] and "and 15 more" in warnings[-1]
    texts = [f"shared {(k + 1) // 2}" for k in range(len(intents))]  # 300 texts under two intents each
    warnings = profile_intents(texts, intents).warnings
    assert sum("appears under 2 intents" in w for w in warnings) == 10
    assert "290 more text(s) appear under more than one intent" in warnings


@pytest.mark.slow
def test_bench_scale_runs_the_user_path_and_writes_its_section(tmp_path, tiny_model):
    md = tmp_path / "BENCH.md"
    md.write_text("# Benchmarks\n\nkept\n\n<!-- scale:start -->\nold figures\n<!-- scale:end -->\n")
    out = tmp_path / "scale"
    cmd = [sys.executable, "scripts/bench_scale.py", "--intents", "30", "--rows", "600", "--epochs", "0.5",
           "--model", str(tiny_model), "--set", "model.max_length=32", "--set", "train.batch_size=16",
           "--out", str(out), "--write", str(md)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert (result["intents"], result["train_rows"], result["eval_rows"]) == (30, 600, 300)
    assert result["counts"]["min"] >= 2 and result["counts"]["max"] > result["counts"]["median"]
    for phase in ("profile", "train", "evaluate"):
        p = result["phases"][phase]
        assert p["exit"] == 0 and p["seconds"] > 0 and p["peak_rss_mb"] > 10 and p["stdout_lines"] > 30
    assert result["files"]["evaluate/report.html"] > 0 and result["machine"]["cores"] >= 1
    page = (out / "eval" / "report.html").read_text()
    assert "id='intent-filter'" in page and page.count("<tr class=") == 30
    text = md.read_text()
    assert "kept" in text and "old figures" not in text and text.count("<!-- scale:start -->") == 1
    assert "| train |" in text and "30 intents, 600 training rows" in text and "load average" in text
