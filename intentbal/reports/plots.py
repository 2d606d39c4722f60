"""Figures for the reports, as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from intentbal.evaluation.metrics import Report, precision_recall_points

if TYPE_CHECKING:
    from intentbal.training.results import EpochRecord


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


MANY_INTENTS = 100  # above this, one interval per intent is a solid block: show points and a binned mean


def recall_vs_count(report: Report) -> bytes:
    """Recall of each intent against its training count, coloured by verdict: with 95% intervals
    up to ``MANY_INTENTS`` intents; beyond, jittered points and the mean recall per count bin."""
    fig, ax = _figure()
    rows = [m for m in report.intents if m.recall is not None]
    many = len(rows) > MANY_INTENTS
    rng = np.random.default_rng(0)  # the jitter only separates overlapping points; fixed for identical files
    for status, colour in STATUS_COLOURS.items():
        mine = [m for m in rows if m.status == status]
        if not mine:
            continue
        x = np.array([max(m.train_count, 0.8) for m in mine], dtype=float)
        y = np.array([m.recall for m in mine if m.recall is not None])
        label = f"{status.replace('_', ' ')} ({len(mine)})"
        if many:
            ax.scatter(x * np.exp(rng.uniform(-0.08, 0.08, len(x))), y + rng.uniform(-0.012, 0.012, len(y)),
                       s=5, color=colour, alpha=0.45, linewidths=0, label=label)
            continue
        ci = [m.recall_ci for m in mine if m.recall_ci is not None]  # set wherever recall is
        err = [[r - c[0] for r, c in zip(y, ci)], [c[1] - r for r, c in zip(y, ci)]]
        ax.errorbar(x, y, yerr=err, fmt="o", color=colour, ecolor=colour, alpha=0.8, capsize=2, ms=4, label=label)
    if many:
        centres, means = binned_mean([max(m.train_count, 0.8) for m in rows],
                                     [m.recall for m in rows if m.recall is not None])
        ax.plot(centres, means, color="black", lw=2, marker="s", ms=4, label="mean recall per count bin")
    ax.axhline(report.summary.recall_threshold, color="#555", ls="--", lw=1, label="threshold")
    ax.set_xscale("log")
    ax.set_xlabel("training examples (log scale)")
    ax.set_ylabel("recall" if many else "recall (95% Wilson interval)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"Recall against training count, {len(rows)} intents"
                 + (" (intervals in the table)" if many else ""))
    if many:  # inside, the legend would hide the crowd of low-recall points
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, markerscale=2)
    else:
        ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def binned_mean(
    counts: Sequence[float], recalls: Sequence[float], *, bins: int = 12
) -> tuple[list[float], list[float]]:
    """Mean recall in ``bins`` equal bins of log training count (empty bins left out): the
    geometric centre of each bin and its mean."""
    logs = np.log(np.asarray(counts, dtype=float))
    edges = np.linspace(logs.min(), logs.max() + 1e-9, bins + 1)
    which = np.clip(np.searchsorted(edges, logs, side="right") - 1, 0, bins - 1)
    y = np.asarray(recalls, dtype=float)
    kept = [b for b in range(bins) if (which == b).any()]
    return ([float(np.exp((edges[b] + edges[b + 1]) / 2)) for b in kept],
            [float(y[which == b].mean()) for b in kept])


def worst_intents(gold: Sequence[str], predicted: Sequence[str], *, limit: int = 30, confusions: int = 2) -> list[str]:
    """The intents the confusion figure shows, at most ``limit``: gold intents from the lowest
    recall up (more errors first among equals), each followed by the ``confusions`` intents
    its examples were most often mistaken for."""
    support, hits = Counter(gold), Counter(g for g, p in zip(gold, predicted) if g == p)
    wrong: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for g, p in zip(gold, predicted):
        if g != p:
            wrong[g][p] += 1
    order = sorted(support, key=lambda i: (hits[i] / support[i], hits[i] - support[i], i))
    names: list[str] = []
    for intent in order:
        went = sorted(wrong[intent].items(), key=lambda kv: (-kv[1], kv[0]))[:confusions]
        for name in [intent] + [p for p, _ in went]:
            if len(names) < limit and name not in names:
                names.append(name)
        if len(names) >= limit:
            break
    return names


def confusion_matrix(gold: Sequence[str], predicted: Sequence[str], *, top: int = 30) -> bytes:
    """Confusion counts among at most ``top`` intents chosen by :func:`worst_intents`, with a last
    column for predictions of any other intent: readable at thousands of intents."""
    names = worst_intents(gold, predicted, limit=top)
    index = {n: i for i, n in enumerate(names)}
    matrix = np.zeros((len(names), len(names) + 1), dtype=int)
    for g, p in zip(gold, predicted):
        if g in index:
            matrix[index[g], index.get(p, len(names))] += 1
    size = 4 + 0.17 * len(names)
    fig, ax = _figure(size + 1, size)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names) + 1), names + ["(other intents)"], rotation=70, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for (r, c), v in np.ndenumerate(matrix):
        if v:
            ax.text(c, r, str(v), ha="center", va="center", fontsize=6,
                    color="white" if v > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(f"Confusions of the lowest-recall intents ({len(names)} shown of {len(set(gold))})")
    return _png(fig)


def pr_curves(gold: Sequence[str], probabilities: np.ndarray, prob_intents: Sequence[str],
              intents: Sequence[str]) -> bytes:
    """Precision-recall curves of ``intents`` (the rare ones), one-vs-rest."""
    fig, ax = _figure()
    gold_arr = np.asarray(gold)
    column = {n: i for i, n in enumerate(prob_intents)}
    for intent in intents:
        positive = gold_arr == intent
        if intent not in column or not positive.any():
            continue
        precision, recall = precision_recall_points(positive, probabilities[:, column[intent]])
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


def training_curve(history: Sequence[EpochRecord]) -> bytes:
    """The mean training loss per epoch (one line per soup member) and, on a second axis where it
    was measured, the macro recall on the validation data after each epoch."""
    fig, ax = _figure(8, 4.5)
    members = sorted({r.member for r in history})
    several = len(members) > 1
    recall_ax = None
    for k in members:
        rows = [r for r in history if r.member == k]
        suffix = f" (model {k + 1})" if several else ""
        ax.plot([r.epoch for r in rows], [r.loss for r in rows], marker="o", ms=3, lw=1.5,
                color=f"C{k % 10}", label="training loss" + suffix)
        checked = [r for r in rows if r.validation_macro_recall is not None]
        if checked:
            recall_ax = recall_ax or ax.twinx()
            recall_ax.plot([r.epoch for r in checked], [r.validation_macro_recall for r in checked], marker="s",
                           ms=3, lw=1.5, ls="--", color=f"C{k % 10}", label="validation macro recall" + suffix)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss")
    handles, labels = ax.get_legend_handles_labels()
    if recall_ax is not None:
        recall_ax.set_ylabel("validation macro recall (dashed)")
        recall_ax.set_ylim(-0.03, 1.03)
        more = recall_ax.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.set_title("Training curve" + (f", {len(members)} models of the soup" if several else ""))
    if handles:
        ax.legend(handles, labels, fontsize=8, loc="best")
    return _png(fig)
