"""The cost of a confidence threshold: what a chatbot's fallback would swallow.

Predictions under the threshold go to the fallback. For in-scope examples that loses
correct answers, usually the rare intents' first; for out-of-scope examples it is the
right outcome. Pure functions of gold intents, predictions and confidences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

GRID = np.round(np.linspace(0.0, 1.0, 101), 2)

ThresholdSource = Literal["given", "validation", "model", "eval"]
THRESHOLD_SOURCES: dict[str, str] = {
    "given": "given",
    "validation": "chosen on validation data",
    "model": "saved with the model",
    "eval": "chosen on this evaluation data (optimistic: no separate validation data)",
}


def describe_threshold(chosen_on: str) -> str:
    """Words for where a threshold was chosen (any value read back from a file is welcome)."""
    return THRESHOLD_SOURCES.get(chosen_on, chosen_on)


@dataclass(frozen=True, kw_only=True)
class FallbackChoice:
    """A fallback threshold, where it was chosen, and whether it may be saved with a model: only a
    given one or one chosen on out-of-scope examples may (see :func:`choose_threshold`)."""

    threshold: float
    chosen_on: ThresholdSource
    deployable: bool


@dataclass(frozen=True, kw_only=True)
class FallbackAnalysis:
    threshold: float
    chosen_on: ThresholdSource  # "eval": chosen and measured on the same data
    answered_accuracy: float | None  # in-scope accuracy among the predictions kept
    correct_sent_to_fallback: float  # share of correct in-scope predictions under the threshold
    in_scope_recall: float  # share of in-scope examples answered correctly
    oos_recall: float | None  # share of out-of-scope examples sent to the fallback
    per_intent: list[dict[str, Any]]  # intent, support, recall, recall_at_threshold, correct_lost
    curve: dict[str, Any]  # thresholds and, per threshold, in-scope / OOS / per-intent recall
    deployable: bool = False  # given, or chosen on out-of-scope examples: fit to be saved with a model

    def summary(self) -> dict[str, Any]:
        """Everything but the curve, for ``report.json``."""
        return {k: v for k, v in vars(self).items() if k != "curve"}


def choose_threshold(
    gold: Sequence[str],
    predicted: Sequence[str],
    confidence: Sequence[float],
    *,
    oos_label: str | None = None,
    target_precision: float = 0.95,
) -> float:
    """A threshold from labelled data.

    With out-of-scope examples: the one that maximises the mean of in-scope recall and
    out-of-scope recall. Without: the lowest one at which the answered in-scope predictions
    are ``target_precision`` correct (the highest-precision one if none reaches it).
    """
    g, p, c, oos = _arrays(gold, predicted, confidence, oos_label)
    correct = (g == p) & ~oos
    if oos.any() and (~oos).any():
        scores = [(correct & (c >= t)).sum() / (~oos).sum() / 2 + (oos & (c < t)).sum() / oos.sum() / 2 for t in GRID]
        return float(GRID[int(np.argmax(scores))])
    precisions = []
    for t in GRID:
        kept = (c >= t) & ~oos
        precisions.append(correct[kept].mean() if kept.any() else 0.0)
        if precisions[-1] >= target_precision:
            return float(t)
    return float(GRID[int(np.argmax(precisions))])


def analyse_fallback(
    gold: Sequence[str],
    predicted: Sequence[str],
    confidence: Sequence[float],
    *,
    threshold: float,
    chosen_on: ThresholdSource,
    oos_label: str | None = None,
    deployable: bool = False,
) -> FallbackAnalysis:
    """What ``threshold`` costs overall and per intent, with the curve over all thresholds."""
    g, p, c, oos = _arrays(gold, predicted, confidence, oos_label)
    inscope = ~oos
    correct = (g == p) & inscope
    kept = (c >= threshold) & inscope
    intents = sorted(set(g[inscope].tolist()))
    # one pass over the examples, grouped by intent: a scan per intent is quadratic at thousands of intents
    which = _intent_index(g, intents)
    support = np.bincount(which[inscope], minlength=len(intents))
    hits = np.bincount(which[correct], minlength=len(intents))
    hits_kept = np.bincount(which[correct & (c >= threshold)], minlength=len(intents))
    per_intent = [{
        "intent": intent,
        "support": int(support[k]),
        "recall": float(hits[k] / support[k]),
        "recall_at_threshold": float(hits_kept[k] / support[k]),
        "correct_lost": float((hits[k] - hits_kept[k]) / hits[k]) if hits[k] else None,
    } for k, intent in enumerate(intents)]
    return FallbackAnalysis(
        threshold=threshold,
        chosen_on=chosen_on,
        answered_accuracy=float(correct[kept].mean()) if kept.any() else None,
        correct_sent_to_fallback=float((correct & (c < threshold)).sum() / correct.sum()) if correct.any() else 0.0,
        in_scope_recall=float((correct & (c >= threshold)).sum() / inscope.sum()) if inscope.any() else 0.0,
        oos_recall=float((oos & (c < threshold)).sum() / oos.sum()) if oos.any() else None,
        per_intent=per_intent,
        curve=_curve(g, c, correct, oos, intents),
        deployable=deployable,
    )


def _curve(g: np.ndarray, c: np.ndarray, correct: np.ndarray, oos: np.ndarray, intents: list[str]) -> dict[str, Any]:
    inscope = ~oos
    out: dict[str, Any] = {"thresholds": GRID.tolist(), "in_scope_recall": [], "oos_recall": [], "per_intent": {}}
    for t in GRID:
        out["in_scope_recall"].append(float((correct & (c >= t)).sum() / max(1, inscope.sum())))
        out["oos_recall"].append(float((oos & (c < t)).sum() / oos.sum()) if oos.any() else None)
    # kept[k, j]: correct examples of intent k with confidence >= GRID[j], from one histogram
    which = _intent_index(g, intents)
    steps = np.searchsorted(GRID, c, side="right")  # how many thresholds each confidence clears
    width = len(GRID) + 1
    counts = np.bincount(which[correct] * width + steps[correct], minlength=len(intents) * width)
    kept = counts.reshape(len(intents), width)[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:]
    support = np.bincount(which[inscope], minlength=len(intents))
    for k, intent in enumerate(intents):
        out["per_intent"][intent] = (kept[k] / support[k]).tolist()
    return out


def _intent_index(g: np.ndarray, intents: list[str]) -> np.ndarray:
    """Each example's position in ``intents``; -1 for intents not listed (out-of-scope)."""
    index = {intent: k for k, intent in enumerate(intents)}
    return np.fromiter((index.get(x, -1) for x in g), dtype=np.int64, count=len(g))


def _arrays(
    gold: Sequence[str], predicted: Sequence[str], confidence: Sequence[float], oos_label: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    g, p = np.asarray(gold, dtype=object), np.asarray(predicted, dtype=object)
    c = np.asarray(confidence, dtype=np.float64)
    oos = g == oos_label if oos_label is not None else np.zeros(len(g), dtype=bool)
    return g, p, c, np.asarray(oos, dtype=bool)
