"""Per-intent metrics and the summary: pure functions of gold and predicted intents.

An intent with no evaluation examples is *not evaluable*: its recall and F1 are
``None``, never 0.0, and it is left out of every average.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from intentbal.profile import tier_of

TAIL_SHARE = 3  # the tail is the third of evaluated intents with the fewest training examples


@dataclass(frozen=True)
class IntentMetrics:
    intent: str
    tier: str  # rare / medium / frequent, or "unseen" when absent from training
    train_count: int
    augmented_count: int
    support: int
    precision: float | None
    recall: float | None
    f1: float | None
    flagged: bool  # recall under the threshold


@dataclass(frozen=True)
class Report:
    summary: dict[str, Any]
    intents: list[IntentMetrics]

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "intents": [asdict(m) for m in self.intents]}


def evaluate_predictions(
    gold: Sequence[str],
    predicted: Sequence[str],
    *,
    train_counts: dict[str, int],
    augmented_counts: dict[str, int] | None = None,
    rare_max: int = 10,
    frequent_min: int = 50,
    recall_threshold: float = 0.5,
) -> Report:
    """Score ``predicted`` against ``gold`` intent by intent, rarest first.

    Intents are those of training and of ``gold``; ``augmented_counts`` (rows after
    augmentation) defaults to ``train_counts``.
    """
    if len(gold) != len(predicted) or not gold:
        raise ValueError(f"need equal, non-empty gold and predicted lists, got {len(gold)} and {len(predicted)}")
    augmented_counts = augmented_counts if augmented_counts is not None else train_counts
    hits = Counter(g for g, p in zip(gold, predicted) if g == p)
    support, made = Counter(gold), Counter(predicted)
    names = sorted(set(train_counts) | set(support), key=lambda i: (train_counts.get(i, 0), i))
    rows = []
    for intent in names:
        n_train = train_counts.get(intent, 0)
        tier = tier_of(n_train, rare_max=rare_max, frequent_min=frequent_min) if n_train else "unseen"
        precision = hits[intent] / made[intent] if made[intent] else (0.0 if support[intent] else None)
        recall = hits[intent] / support[intent] if support[intent] else None
        f1 = None if recall is None else _f1(precision or 0.0, recall)
        flagged = recall is not None and recall < recall_threshold
        rows.append(IntentMetrics(intent, tier, n_train, augmented_counts.get(intent, n_train),
                                  support[intent], precision, recall, f1, flagged))
    return Report(_summary(rows, gold, predicted, recall_threshold), rows)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _summary(
    rows: list[IntentMetrics], gold: Sequence[str], predicted: Sequence[str], threshold: float
) -> dict[str, Any]:
    judged = [r for r in rows if r.recall is not None]  # already rarest first
    tail = judged[: max(1, len(judged) // TAIL_SHARE)]
    worst = min(judged, key=lambda r: (r.recall, r.train_count, r.intent))
    return {
        "n": len(gold),
        "accuracy": sum(g == p for g, p in zip(gold, predicted)) / len(gold),
        "macro_f1": sum(r.f1 for r in judged) / len(judged),
        "macro_recall": sum(r.recall for r in judged) / len(judged),
        "tail_recall": sum(r.recall for r in tail) / len(tail),
        "worst_recall": worst.recall,
        "worst_intent": worst.intent,
        "recall_threshold": threshold,
        "below_threshold": sum(r.flagged for r in judged),
        "intents_evaluated": len(judged),
        "tail_intents": [r.intent for r in tail],
        "not_evaluable": [r.intent for r in rows if r.recall is None],
        "unseen_in_train": [r.intent for r in rows if r.train_count == 0],
    }
