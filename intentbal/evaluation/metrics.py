"""Per-intent metrics and the summary: pure functions of gold and predicted intents.

An intent with no evaluation examples is *not evaluable*: its recall and F1 are
``None``, never 0.0, and it is left out of every average. Recall and precision carry
95% Wilson intervals; an intent with fewer than ``min_support`` eval examples has
*insufficient evidence* and is never called passed or failed.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from intentbal.data.overlap import Overlap
from intentbal.data.profiling import Tier, tier_of

Status = Literal["pass", "at_risk", "fail", "insufficient_evidence", "not_evaluable"]

# set by intentbal.evaluation.scoring.score
SCORING_FIELDS = ("oos_examples", "fallback_threshold", "oos_caught", "overlap")
TAIL_SHARE = 3  # the tail is the third of evaluated intents with the fewest training examples
# (name, lowest training count, highest or None): the buckets of Summary.recall_by_count
COUNT_BUCKETS: tuple[tuple[str, int, int | None], ...] = (("1-4", 1, 4), ("5-9", 5, 9), ("10-29", 10, 29),
                                                          ("30+", 30, None))
Z95 = 1.959963984540054


@dataclass(frozen=True, kw_only=True)
class IntentMetrics:
    intent: str
    tier: Tier | Literal["unseen"]  # "unseen": absent from training
    train_count: int
    augmented_count: int
    support: int
    precision: float | None
    recall: float | None
    f1: float | None
    flagged: bool  # recall under the threshold
    recall_ci: list[float] | None = None  # 95% Wilson interval
    precision_ci: list[float] | None = None
    status: Status = "not_evaluable"
    roc_auc: float | None = None  # one-vs-rest, from the predicted probabilities
    average_precision: float | None = None
    confused_with: list[list[Any]] | None = None  # [[predicted intent, count], ...] of its examples
    confused_from: list[list[Any]] | None = None  # [[gold intent, count], ...] wrongly predicted as it
    pseudo_count: int = 0  # unlabeled utterances the model also trained on as this intent (self-training)


@dataclass(frozen=True, kw_only=True)
class RefitNote:
    """The shipped model was refit on every labelled row after the report was made."""

    rows: int  # every labelled row the shipped model trained on
    held_out_rows: int  # rows the evaluated (reported) model did not train on
    validation_rows: int = 0  # of them, rows of the validation file

    def to_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "held_out_rows": self.held_out_rows, "validation_rows": self.validation_rows,
                "reported_on": "model trained without the held-out rows"}


@dataclass(frozen=True, kw_only=True)
class CountBucket:
    """The evaluated intents with ``low`` to ``high`` training examples (``high`` None: no upper
    bound) and their mean recall, None (never 0) when none of them has eval examples."""

    name: str
    low: int
    high: int | None
    intents: int  # evaluated intents in the bucket
    recall: float | None


@dataclass(frozen=True, kw_only=True)
class Summary:
    """A report's headline numbers: means over the evaluated intents (``None``: nothing to average,
    never 0), the tail (the third of them with the fewest training examples) and the verdicts."""

    n: int
    accuracy: float
    macro_f1: float
    macro_recall: float
    tail_recall: float
    worst_recall: float
    worst_intent: str
    recall_threshold: float
    below_threshold: int
    intents_evaluated: int
    tail_intents: list[str]
    not_evaluable: list[str]
    unseen_in_train: list[str]
    macro_roc_auc: float | None
    macro_average_precision: float | None
    min_support: int
    failing: list[str]
    at_risk: list[str]
    insufficient_evidence: list[str]
    recall_by_count: list[CountBucket]  # rare intents against frequent ones, by training count
    # what scoring a model adds (see intentbal.evaluation.scoring.score)
    oos_examples: int | None = None
    fallback_threshold: float | None = None
    oos_caught: float | None = None  # share of out-of-scope inputs the fallback threshold catches
    overlap: Overlap | None = None  # eval texts also in training
    refit: RefitNote | None = None  # when the shipped model was refit on every row after this report

    def to_dict(self) -> dict[str, Any]:
        """``report.json``'s summary: the scoring fields only once a model was scored, ``refit`` only after one."""
        d = asdict(self)
        d["overlap"] = self.overlap.to_dict() if self.overlap is not None else None
        d["refit"] = self.refit.to_dict() if self.refit is not None else None
        unscored = SCORING_FIELDS if self.fallback_threshold is None else ()
        for key in (*unscored, *(("refit",) if self.refit is None else ())):
            del d[key]
        return d


@dataclass(frozen=True, kw_only=True)
class Report:
    summary: Summary
    intents: list[IntentMetrics]

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary.to_dict(), "intents": [asdict(m) for m in self.intents]}


def wilson_interval(successes: int, n: int, *, z: float = Z95) -> list[float] | None:
    """The Wilson score interval of ``successes / n`` (95% by default); None when ``n`` is 0."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return [low, high]


def judge(ci: list[float] | None, support: int, *, threshold: float, min_support: int) -> Status:
    """``fail`` when the whole interval lies under ``threshold``, ``at_risk`` when it straddles
    it, ``pass`` when it lies above; too few examples are ``insufficient_evidence``."""
    if ci is None:
        return "not_evaluable"
    if support < min_support:
        return "insufficient_evidence"
    if ci[1] < threshold:
        return "fail"
    return "pass" if ci[0] >= threshold else "at_risk"


def evaluate_predictions(
    gold: Sequence[str],
    predicted: Sequence[str],
    *,
    train_counts: dict[str, int],
    augmented_counts: dict[str, int] | None = None,
    pseudo_counts: dict[str, int] | None = None,
    probabilities: np.ndarray | None = None,
    prob_intents: Sequence[str] = (),
    rare_max: int = 10,
    frequent_min: int = 50,
    recall_threshold: float = 0.5,
    min_support: int = 5,
    top_confusions: int = 3,
) -> Report:
    """Score ``predicted`` against ``gold`` intent by intent, rarest first.

    Intents are those of training and of ``gold``; ``augmented_counts`` (rows after
    augmentation) defaults to ``train_counts``; ``pseudo_counts`` are the unlabeled utterances
    self-training added per intent (none by default). With ``probabilities`` (one row per example,
    columns named by ``prob_intents``) each intent also gets one-vs-rest ROC-AUC and
    average precision.
    """
    if len(gold) != len(predicted) or not gold:
        raise ValueError(f"need equal, non-empty gold and predicted lists, got {len(gold)} and {len(predicted)}")
    augmented_counts = augmented_counts if augmented_counts is not None else train_counts
    hits = Counter(g for g, p in zip(gold, predicted) if g == p)
    support, made = Counter(gold), Counter(predicted)
    confused_with: dict[str, Counter[str]] = defaultdict(Counter)  # grouped once: no scan per intent
    confused_from: dict[str, Counter[str]] = defaultdict(Counter)
    for g, p in zip(gold, predicted):
        if g != p:
            confused_with[g][p] += 1
            confused_from[p][g] += 1
    ranking = _ranking(gold, probabilities, list(prob_intents))
    names = sorted(set(train_counts) | set(support), key=lambda i: (train_counts.get(i, 0), i))
    rows = []
    for intent in names:
        n_train = train_counts.get(intent, 0)
        recall_ci = wilson_interval(hits[intent], support[intent])
        rows.append(IntentMetrics(
            intent=intent,
            tier=tier_of(n_train, rare_max=rare_max, frequent_min=frequent_min) if n_train else "unseen",
            train_count=n_train,
            augmented_count=augmented_counts.get(intent, n_train),
            support=support[intent],
            precision=hits[intent] / made[intent] if made[intent] else (0.0 if support[intent] else None),
            recall=hits[intent] / support[intent] if support[intent] else None,
            f1=_f1(hits[intent], support[intent], made[intent]),
            flagged=bool(support[intent]) and hits[intent] / support[intent] < recall_threshold,
            recall_ci=recall_ci,
            precision_ci=wilson_interval(hits[intent], made[intent]),
            status=judge(recall_ci, support[intent], threshold=recall_threshold, min_support=min_support),
            roc_auc=ranking.get(intent, (None, None))[0],
            average_precision=ranking.get(intent, (None, None))[1],
            confused_with=_top(confused_with[intent].items())[:top_confusions],
            confused_from=_top(confused_from[intent].items())[:top_confusions],
            pseudo_count=(pseudo_counts or {}).get(intent, 0),
        ))
    return Report(summary=_summary(rows, gold, predicted, recall_threshold, min_support), intents=rows)


def _mean(values: list[float | None]) -> float:
    # the rows were chosen by a field that is set together with these (recall with f1,
    # roc_auc with average_precision), so no value is None; the filter is for the type checker
    known = [v for v in values if v is not None]
    return sum(known) / len(known)


def _f1(hits: int, support: int, made: int) -> float | None:
    if not support:
        return None
    precision, recall = (hits / made if made else 0.0), hits / support
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _top(pairs: Any) -> list[list[Any]]:
    return [[name, count] for name, count in sorted(pairs, key=lambda nc: (-nc[1], nc[0]))]


def _ranking(
    gold: Sequence[str], probabilities: np.ndarray | None, prob_intents: list[str]
) -> dict[str, tuple[float, float]]:
    """One-vs-rest ROC-AUC and average precision for intents with positives and negatives.

    The same values as scikit-learn's ``roc_auc_score`` and ``average_precision_score``
    (ties included), computed from one sort per intent: with thousands of intents the
    per-call overhead of scikit-learn took minutes.
    """
    if probabilities is None:
        return {}
    column = {intent: col for col, intent in enumerate(prob_intents)}
    rows: dict[int, list[int]] = defaultdict(list)
    for row, intent in enumerate(gold):
        if intent in column:
            rows[column[intent]].append(row)
    n = len(gold)
    out = {}
    for col, positives in rows.items():
        if len(positives) == n:
            continue
        scores = np.asarray(probabilities[:, col], dtype=np.float64)
        out[prob_intents[col]] = _auc_ap(np.sort(scores), np.sort(scores[positives]), n)
    return out


def _auc_ap(ranked: np.ndarray, positive: np.ndarray, n: int) -> tuple[float, float]:
    """ROC-AUC (Mann-Whitney, ties count half) and average precision (scikit-learn's step sum over
    distinct scores) from all scores and the positives' scores, both sorted ascending."""
    n_pos = len(positive)
    below_all = np.searchsorted(ranked, positive, side="left")
    equal_all = np.searchsorted(ranked, positive, side="right") - below_all
    below_pos = np.searchsorted(positive, positive, side="left")
    equal_pos = np.searchsorted(positive, positive, side="right") - below_pos
    negatives_below = below_all - below_pos
    negatives_equal = equal_all - equal_pos
    auc = float((negatives_below + 0.5 * negatives_equal).sum() / (n_pos * (n - n_pos)))
    distinct, first = np.unique(positive, return_index=True)
    at_or_above = n - np.searchsorted(ranked, distinct, side="left")  # predicted positive at each threshold
    hits = n_pos - first  # positives at or above it
    tied = np.diff(np.append(first, n_pos))  # positives exactly at it: the recall step
    return auc, float((tied / n_pos * hits / at_or_above).sum())


def precision_recall_points(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest precision and recall at every distinct score taken as the threshold, as
    scikit-learn's ``precision_recall_curve`` gives them (recall falling, then the point (recall 0,
    precision 1)); ``positive`` needs at least one true row. One sort, without importing
    scikit-learn, whose metrics module takes seconds to import."""
    values = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-values, kind="mergesort")
    ranked, hits = values[order], np.cumsum(np.asarray(positive, dtype=bool)[order])
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # the last row at each distinct score
    tp = hits[last].astype(np.float64)
    precision, recall = tp / (last + 1), tp / tp[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]


def _summary(
    rows: list[IntentMetrics], gold: Sequence[str], predicted: Sequence[str], threshold: float, min_support: int
) -> Summary:
    judged = [r for r in rows if r.recall is not None]  # already rarest first
    tail = judged[: max(1, len(judged) // TAIL_SHARE)]
    worst_recall, worst = min(((r.recall, r) for r in judged if r.recall is not None),
                              key=lambda pair: (pair[0], pair[1].train_count, pair[1].intent))
    ranked = [r for r in rows if r.roc_auc is not None]
    by_status: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        by_status[r.status].append(r.intent)
    return Summary(
        n=len(gold),
        accuracy=sum(g == p for g, p in zip(gold, predicted)) / len(gold),
        macro_f1=_mean([r.f1 for r in judged]),
        macro_recall=_mean([r.recall for r in judged]),
        tail_recall=_mean([r.recall for r in tail]),
        worst_recall=worst_recall,
        worst_intent=worst.intent,
        recall_threshold=threshold,
        below_threshold=sum(r.flagged for r in judged),
        intents_evaluated=len(judged),
        tail_intents=[r.intent for r in tail],
        not_evaluable=[r.intent for r in rows if r.recall is None],
        unseen_in_train=[r.intent for r in rows if r.train_count == 0],
        macro_roc_auc=_mean([r.roc_auc for r in ranked]) if ranked else None,
        macro_average_precision=_mean([r.average_precision for r in ranked]) if ranked else None,
        min_support=min_support,
        failing=by_status["fail"],
        at_risk=by_status["at_risk"],
        insufficient_evidence=by_status["insufficient_evidence"],
        recall_by_count=recall_by_count(judged),
    )


def recall_by_count(rows: Sequence[IntentMetrics]) -> list[CountBucket]:
    """Each of :data:`COUNT_BUCKETS`: the evaluated intents of ``rows`` in it and their mean recall."""
    out = []
    for name, low, high in COUNT_BUCKETS:
        inside = [r.recall for r in rows
                  if r.recall is not None and r.train_count >= low and (high is None or r.train_count <= high)]
        out.append(CountBucket(name=name, low=low, high=high, intents=len(inside),
                               recall=sum(inside) / len(inside) if inside else None))
    return out
