"""Figures for the reports, as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from intentbal.evaluate import Report

STATUS_COLOURS = {"pass": "#2e7d32", "at_risk": "#f9a825", "fail": "#c62828",
                  "insufficient_evidence": "#9e9e9e", "not_evaluable": "#9e9e9e"}


def _figure(width: float = 8, height: float = 5) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=110)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def recall_vs_count(report: Report) -> bytes:
    """Recall of each intent against its training count, with 95% intervals, coloured by verdict."""
    fig, ax = _figure()
    rows = [m for m in report.intents if m.recall is not None]
    for status, colour in STATUS_COLOURS.items():
        mine = [m for m in rows if m.status == status]
        if not mine:
            continue
        x = [max(m.train_count, 0.8) for m in mine]
        y = [m.recall for m in mine if m.recall is not None]
        ci = [m.recall_ci for m in mine if m.recall_ci is not None]  # set wherever recall is
        err = [[r - c[0] for r, c in zip(y, ci)], [c[1] - r for r, c in zip(y, ci)]]
        ax.errorbar(x, y, yerr=err, fmt="o", color=colour, ecolor=colour, alpha=0.8, capsize=2, ms=4,
                    label=status.replace("_", " "))
    ax.axhline(report.summary["recall_threshold"], color="#555", ls="--", lw=1, label="threshold")
    ax.set_xscale("log")
    ax.set_xlabel("training examples (log scale)")
    ax.set_ylabel("recall (95% Wilson interval)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("Recall against training count")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def confusion_matrix(gold: Sequence[str], predicted: Sequence[str], *, top: int = 15) -> bytes:
    """Confusion counts among the ``top`` intents involved in the most errors."""
    errors: dict[str, int] = {}
    for g, p in zip(gold, predicted):
        if g != p:
            errors[g] = errors.get(g, 0) + 1
            errors[p] = errors.get(p, 0) + 1
    names = sorted(errors, key=lambda i: (-errors[i], i))[:top] or sorted(set(gold))[:top]
    index = {n: i for i, n in enumerate(names)}
    matrix = np.zeros((len(names), len(names)), dtype=int)
    for g, p in zip(gold, predicted):
        if g in index and p in index:
            matrix[index[g], index[p]] += 1
    fig, ax = _figure(8, 7)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=70, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for (r, c), v in np.ndenumerate(matrix):
        if v:
            ax.text(c, r, str(v), ha="center", va="center", fontsize=6,
                    color="white" if v > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(f"Confusions among the {len(names)} most confused intents")
    return _png(fig)


def pr_curves(gold: Sequence[str], probabilities: np.ndarray, prob_intents: Sequence[str],
              intents: Sequence[str]) -> bytes:
    """Precision-recall curves of ``intents`` (the rare ones), one-vs-rest."""
    from sklearn.metrics import precision_recall_curve

    fig, ax = _figure()
    gold_arr = np.asarray(gold)
    column = {n: i for i, n in enumerate(prob_intents)}
    for intent in intents:
        positive = gold_arr == intent
        if intent not in column or not positive.any():
            continue
        precision, recall, _ = precision_recall_curve(positive, probabilities[:, column[intent]])
        ax.plot(recall, precision, lw=1.2, label=intent)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall curves of the rarest intents")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower left")
    return _png(fig)


def fallback_curves(curve: dict[str, Any], intents: Sequence[str], threshold: float) -> bytes:
    """Recall kept at each confidence threshold: overall, out-of-scope, and the rare intents."""
    fig, ax = _figure()
    t = curve["thresholds"]
    for intent in intents:
        if intent in curve["per_intent"]:
            ax.plot(t, curve["per_intent"][intent], lw=0.9, alpha=0.7, label=intent)
    ax.plot(t, curve["in_scope_recall"], color="black", lw=2.2, label="all in-scope")
    if curve["oos_recall"] and curve["oos_recall"][0] is not None:
        ax.plot(t, curve["oos_recall"], color="#c62828", lw=2.2, ls=":", label="out-of-scope sent to fallback")
    ax.axvline(threshold, color="#555", ls="--", lw=1)
    ax.set_xlabel("confidence threshold (below it: fallback)")
    ax.set_ylabel("recall kept")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Recall at each fallback threshold")
    ax.legend(fontsize=7, loc="lower left")
    return _png(fig)
