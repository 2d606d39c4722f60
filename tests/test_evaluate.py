import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from intentbal.evaluate import evaluate_predictions

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
    assert summary["accuracy"] == pytest.approx(accuracy_score(gold, pred))
    assert summary["macro_f1"] == pytest.approx(f.mean())
    assert summary["macro_recall"] == pytest.approx(r.mean())
    assert summary["worst_recall"] == pytest.approx(r.min())
    # the tail: a third of the 4 judged intents (at least 1), fewest training examples first
    assert summary["tail_intents"] == ["d"]
    assert summary["tail_recall"] == pytest.approx(r[judged.index("d")])


def test_intent_without_eval_examples_is_not_evaluable_not_zero():
    report = evaluate_predictions(["a", "a", "b"], ["a", "e", "b"], train_counts=TRAIN)
    rows = {m.intent: m for m in report.intents}
    assert rows["c"].recall is None and rows["c"].f1 is None and rows["c"].precision is None
    assert rows["e"].recall is None and rows["e"].precision == 0.0  # predicted once, wrongly
    assert report.summary["not_evaluable"] == ["e", "d", "c"]
    assert report.summary["intents_evaluated"] == 2
    assert report.summary["macro_recall"] == pytest.approx((0.5 + 1.0) / 2)


def test_unseen_eval_intent_is_reported_and_rows_are_rarest_first():
    report = evaluate_predictions(["a", "z"], ["a", "a"], train_counts={"a": 5, "b": 9},
                                  augmented_counts={"a": 8, "b": 9}, recall_threshold=0.5)
    rows = report.intents
    assert [m.intent for m in rows] == ["z", "a", "b"]
    z = rows[0]
    assert (z.tier, z.train_count, z.recall, z.flagged) == ("unseen", 0, 0.0, True)
    assert rows[1].augmented_count == 8 and rows[1].train_count == 5
    assert report.summary["unseen_in_train"] == ["z"]
    assert report.summary["below_threshold"] == 1


def test_report_dict_contract():
    report = evaluate_predictions(["a", "b"], ["a", "b"], train_counts={"a": 3, "b": 60}).to_dict()
    for key in ("accuracy", "macro_f1", "macro_recall", "tail_recall", "worst_recall"):
        assert key in report["summary"]
    assert set(report["intents"][0]) >= {"intent", "train_count", "augmented_count", "support",
                                         "precision", "recall", "f1", "tier"}
