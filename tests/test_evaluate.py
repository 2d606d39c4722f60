import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from intentbal.evaluation.metrics import evaluate_predictions

TRAIN = {"a": 50, "b": 20, "c": 5, "d": 2, "e": 1}


def sample(seed=0, n=200):
    rng = np.random.default_rng(seed)
    intents = ["a", "b", "c", "d"]
    gold = list(rng.choice(intents, size=n))
    pred = [g if rng.random() < 0.7 else str(rng.choice(intents + ["e"])) for g in gold]
    return gold, pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numbers_match_scikit_learn(seed):
    gold, pred = sample(seed)
    report = evaluate_predictions(gold, pred, train_counts=TRAIN)
    judged = sorted(set(gold))
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=judged, zero_division=0)
    rows = {m.intent: m for m in report.intents}
    for i, intent in enumerate(judged):
        assert rows[intent].precision == pytest.approx(p[i])
        assert rows[intent].recall == pytest.approx(r[i])
        assert rows[intent].f1 == pytest.approx(f[i])
        assert rows[intent].support == s[i]
    summary = report.summary
    assert summary.accuracy == pytest.approx(accuracy_score(gold, pred))
    assert summary.macro_f1 == pytest.approx(f.mean())
    assert summary.macro_recall == pytest.approx(r.mean())
    assert summary.worst_recall == pytest.approx(r.min())
    # the tail: a third of the 4 judged intents (at least 1), fewest training examples first
    assert summary.tail_intents == ["d"]
    assert summary.tail_recall == pytest.approx(r[judged.index("d")])


def test_intent_without_eval_examples_is_not_evaluable_not_zero():
    report = evaluate_predictions(["a", "a", "b"], ["a", "e", "b"], train_counts=TRAIN)
    rows = {m.intent: m for m in report.intents}
    assert rows["c"].recall is None and rows["c"].f1 is None and rows["c"].precision is None
    assert rows["e"].recall is None and rows["e"].precision == 0.0  # predicted once, wrongly
    assert report.summary.not_evaluable == ["e", "d", "c"]
    assert report.summary.intents_evaluated == 2
    assert report.summary.macro_recall == pytest.approx((0.5 + 1.0) / 2)


def test_unseen_eval_intent_is_reported_and_rows_are_rarest_first():
    report = evaluate_predictions(["a", "z"], ["a", "a"], train_counts={"a": 5, "b": 9},
                                  augmented_counts={"a": 8, "b": 9}, recall_threshold=0.5)
    rows = report.intents
    assert [m.intent for m in rows] == ["z", "a", "b"]
    z = rows[0]
    assert (z.tier, z.train_count, z.recall, z.flagged) == ("unseen", 0, 0.0, True)
    assert rows[1].augmented_count == 8 and rows[1].train_count == 5
    assert report.summary.unseen_in_train == ["z"]
    assert report.summary.below_threshold == 1


BARE_SUMMARY = {"n", "accuracy", "macro_f1", "macro_recall", "tail_recall", "worst_recall", "worst_intent",
                "recall_threshold", "below_threshold", "intents_evaluated", "tail_intents", "not_evaluable",
                "unseen_in_train", "macro_roc_auc", "macro_average_precision", "min_support", "failing", "at_risk",
                "insufficient_evidence", "recall_by_count"}


def test_recall_by_training_count_averages_each_buckets_evaluated_intents():
    from intentbal.reports.text import summary_lines

    counts = {"two": 2, "four": 4, "seven": 7, "twelve": 12, "forty": 40, "untested": 3}
    gold = ["two", "two", "four", "seven", "twelve", "twelve", "forty", "stranger"]
    pred = ["two", "x", "four", "two", "twelve", "twelve", "forty", "forty"]
    buckets = evaluate_predictions(gold, pred, train_counts=counts).summary.recall_by_count
    by_name = {b.name: (b.intents, b.recall) for b in buckets}
    # "untested" has no eval rows and "stranger" no training rows: neither is in a bucket
    assert by_name == {"1-4": (2, pytest.approx(0.75)), "5-9": (1, 0.0), "10-29": (1, 1.0), "30+": (1, 1.0)}
    empty = evaluate_predictions(["forty"], ["forty"], train_counts={"forty": 40, "two": 2}).summary
    assert {b.name: b.recall for b in empty.recall_by_count}["1-4"] is None  # nothing to average, not 0
    lines = summary_lines(evaluate_predictions(gold, pred, train_counts=counts))
    assert "recall by training examples (intents): 1-4 0.750 (2)   5-9 0.000 (1)   10-29 1.000 (1)   " \
           "30+ 1.000 (1)" in lines


def test_report_dict_contract():
    from dataclasses import replace

    bare = evaluate_predictions(["a", "b"], ["a", "b"], train_counts={"a": 3, "b": 60})
    report = bare.to_dict()
    assert set(report["summary"]) == BARE_SUMMARY  # a cv report: no scoring fields, no refit
    scored = replace(bare.summary, oos_examples=0, fallback_threshold=0.4, oos_caught=None, overlap=None)
    assert set(scored.to_dict()) == BARE_SUMMARY | {"oos_examples", "fallback_threshold", "oos_caught", "overlap"}
    from intentbal.evaluation.metrics import RefitNote

    refit = {"rows": 9, "held_out_rows": 2, "validation_rows": 0,
             "reported_on": "model trained without the held-out rows"}
    assert replace(scored, refit=RefitNote(rows=9, held_out_rows=2)).to_dict()["refit"] == refit
    assert set(report["intents"][0]) >= {"intent", "train_count", "augmented_count", "support",
                                         "precision", "recall", "f1", "tier"}


# --- intervals, verdicts, confusions, threshold-free measures -----------------------------------

from intentbal.evaluation.metrics import judge, wilson_interval  # noqa: E402


@pytest.mark.parametrize("k, n, low, high", [
    # hand-computed: centre = (p + z^2/2n) / (1 + z^2/n), half = z/(1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2)
    (3, 3, 0.438503, 1.0),
    (0, 3, 0.0, 0.561497),
    (5, 10, 0.236593, 0.763407),
    (300, 300, 0.987357, 1.0),
    (38, 40, 0.834961, 0.986179),
])
def test_wilson_interval_against_hand_computed_values(k, n, low, high):
    ci = wilson_interval(k, n)
    assert ci == pytest.approx([low, high], abs=1e-6)


def test_wilson_interval_of_nothing_is_none():
    assert wilson_interval(0, 0) is None


def test_same_recall_different_evidence():
    small, large = wilson_interval(3, 3), wilson_interval(300, 300)
    assert small[1] - small[0] > 10 * (large[1] - large[0])


def test_verdicts():
    assert judge(wilson_interval(0, 20), 20, threshold=0.6, min_support=5) == "fail"
    assert judge(wilson_interval(10, 20), 20, threshold=0.6, min_support=5) == "at_risk"
    assert judge(wilson_interval(20, 20), 20, threshold=0.6, min_support=5) == "pass"
    assert judge(wilson_interval(0, 3), 3, threshold=0.6, min_support=5) == "insufficient_evidence"
    assert judge(None, 0, threshold=0.6, min_support=5) == "not_evaluable"


def test_report_carries_intervals_statuses_and_confusions():
    gold = ["a"] * 10 + ["b"] * 10 + ["c"] * 2
    pred = ["a"] * 10 + ["a"] * 6 + ["c"] * 2 + ["b"] * 2 + ["b"] * 2
    report = evaluate_predictions(gold, pred, train_counts={"a": 50, "b": 20, "c": 2}, min_support=5,
                                  recall_threshold=0.6)
    rows = {m.intent: m for m in report.intents}
    assert rows["a"].recall_ci == pytest.approx(wilson_interval(10, 10))
    assert rows["a"].precision_ci == pytest.approx(wilson_interval(10, 16))
    assert rows["a"].status == "pass"
    assert rows["b"].status == "fail"  # 2 of 10: the interval lies under 0.6
    assert rows["c"].status == "insufficient_evidence"
    assert rows["b"].confused_with == [["a", 6], ["c", 2]]
    assert rows["a"].confused_from == [["b", 6]]
    assert rows["b"].confused_from == [["c", 2]]
    assert report.summary.failing == ["b"]
    assert report.summary.insufficient_evidence == ["c"]


def test_roc_auc_and_average_precision_match_scikit_learn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    intents = ["a", "b", "c"]
    gold = list(rng.choice(intents, size=60))
    probs = rng.dirichlet([1, 1, 1], size=60)
    pred = [intents[i] for i in probs.argmax(1)]
    report = evaluate_predictions(gold, pred, train_counts={"a": 5, "b": 5, "c": 5},
                                  probabilities=probs, prob_intents=intents)
    rows = {m.intent: m for m in report.intents}
    for col, intent in enumerate(intents):
        positive = np.array(gold) == intent
        assert rows[intent].roc_auc == pytest.approx(roc_auc_score(positive, probs[:, col]))
        assert rows[intent].average_precision == pytest.approx(average_precision_score(positive, probs[:, col]))
    assert report.summary.macro_roc_auc == pytest.approx(np.mean([rows[i].roc_auc for i in intents]))


@pytest.mark.parametrize("decimals", [1, 2, 6])  # 1 and 2: many tied scores
def test_precision_recall_points_match_scikit_learn(decimals):
    from sklearn.metrics import precision_recall_curve

    from intentbal.evaluation.metrics import precision_recall_points

    rng = np.random.default_rng(decimals)
    for n in (1, 2, 7, 40, 300):
        positive = rng.random(n) < 0.3
        positive[rng.integers(n)] = True
        scores = np.round(rng.random(n), decimals)
        expected_p, expected_r, _ = precision_recall_curve(positive, scores)
        precision, recall = precision_recall_points(positive, scores)
        np.testing.assert_allclose(precision, expected_p)
        np.testing.assert_allclose(recall, expected_r)
