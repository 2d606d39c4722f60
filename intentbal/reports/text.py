"""Reports as text: terminal and Markdown tables, summary lines, profile and comparison tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from intentbal.data.overlap import overlap_warning
from intentbal.evaluation.gate import Change, comparison_scope
from intentbal.evaluation.metrics import IntentMetrics, Report
from intentbal.listing import listing

if TYPE_CHECKING:
    from intentbal.data.profiling import Profile


STATUS = {"pass": "ok", "at_risk": "AT RISK", "fail": "FAIL", "insufficient_evidence": "too few",
          "not_evaluable": "n/a"}


def fmt(value: float | None) -> str:
    """Three decimals, or ``n/a`` for a value that could not be measured."""
    return "n/a" if value is None else f"{value:.3f}"


def report_table(report: Report, *, markdown: bool = False) -> str:
    """Per-intent table, rarest intents first, with each intent's verdict."""
    header = ["intent", "tier", "train", "augmented", "support", "recall", "95% CI", "precision", "f1", "status"]
    rows = [_row(m) for m in report.intents]
    if any(m.pseudo_count for m in report.intents):  # self-training: what each intent borrowed from the pool
        header.insert(4, "pseudo")
        for row, m in zip(rows, report.intents):
            row.insert(4, str(m.pseudo_count))
    return _table(header, rows, markdown=markdown)


def interval(ci: list[float] | None) -> str:
    return "n/a" if ci is None else f"{ci[0]:.2f}-{ci[1]:.2f}"


def summary_lines(report: Report) -> list[str]:
    """The summary for a terminal; with out-of-scope examples the scores are in-scope ones, and a
    line says what the fallback threshold catches."""
    s = report.summary
    oos = s.oos_examples or 0
    lines = [
        f"{'in-scope accuracy' if oos else 'accuracy'} {s.accuracy:.3f}   macro-F1 {s.macro_f1:.3f}   "
        f"macro recall {s.macro_recall:.3f}",
        f"tail recall {s.tail_recall:.3f} (the {len(s.tail_intents)} intents with fewest training examples)",
        f"worst recall {s.worst_recall:.3f} ({s.worst_intent});   "
        f"{s.below_threshold} of {s.intents_evaluated} intents under {s.recall_threshold:.2f} recall",
    ]
    buckets = [f"{b.name} {b.recall:.3f} ({b.intents})" for b in s.recall_by_count if b.recall is not None]
    if buckets:
        lines.append("recall by training examples (intents): " + "   ".join(buckets))
    if s.macro_roc_auc is not None:
        lines.append(f"macro ROC-AUC {s.macro_roc_auc:.3f}   "
                     f"macro average precision {s.macro_average_precision:.3f}")
    named = (("failing", "failing"), ("at_risk", "at risk"), ("insufficient_evidence", "with too few eval examples"))
    verdicts = [f"{len(getattr(s, k))} {label}" for k, label in named if getattr(s, k)]
    if verdicts:
        lines.append(f"recall interval vs {s.recall_threshold:.2f}: " + ", ".join(verdicts)
                     + (f" (fewer than {s.min_support})" if s.insufficient_evidence else ""))
    if oos and s.oos_caught is not None:
        lines.append(f"out of scope: fallback threshold {s.fallback_threshold:.2f} catches "
                     f"{s.oos_caught:.1%} of {oos} out-of-scope inputs")
    if s.not_evaluable:
        lines.append(f"not evaluable (no eval examples): {listing(s.not_evaluable, see='report.json')}")
    if s.unseen_in_train:
        lines.append(f"eval intents never seen in training: {listing(s.unseen_in_train, see='report.json')}")
    overlap = overlap_warning(s.overlap, see="report.json") if s.overlap else None
    if overlap:
        lines.append(f"warning: {overlap}")
    if s.refit:
        from_validation = s.refit.validation_rows
        rows = (f"{s.refit.rows} labelled rows ({from_validation} of them from the validation file)"
                if from_validation else f"{s.refit.rows} training rows")
        lines.append(f"measured on the model trained without the {s.refit.held_out_rows} held-out rows; "
                     f"the shipped model was then refit on all {rows}")
    return lines


def compare_table(changes: Sequence[Change]) -> str:
    """Two reports side by side, intent by intent, with the one-sided test of each change."""
    header = ["intent", "support A", "recall A", "support B", "recall B", "change", "p(worse)", "verdict"]
    rows = [[c.intent, str(c.support_a), fmt(c.recall_a), str(c.support_b), fmt(c.recall_b),
             "n/a" if c.difference is None else f"{c.difference:+.3f}",
             "n/a" if c.p_lower is None else f"{c.p_lower:.3f}", c.verdict()] for c in changes]
    return _table(header, rows)


def scope_line(changes: Sequence[Change], *, a: str, b: str) -> str:
    """What two reports were compared on: "N shared intents, K regressions; only in A: ..."."""
    scope = comparison_scope(list(changes))
    worse = sum(c.verdict() == "worse" for c in changes)
    line = f"{len(scope.shared)} shared intent(s), {worse} regression(s)"
    for name, only in ((a, scope.only_a), (b, scope.only_b)):
        if only:
            line += f"; only in {name} ({len(only)}): {listing(only, see='the table above')}"
    return line


def profile_table(profile: Profile) -> str:
    header = ["intent", "count", "share", "tier"]
    rows = [[p.intent, str(p.count), f"{p.share:.1%}", p.tier] for p in profile.intents]
    return _table(header, rows)


def profile_lines(profile: Profile) -> list[str]:
    lines = [
        f"{profile.n_examples} examples, {profile.n_intents} intents, median {profile.median_count:g} "
        f"per intent, imbalance ratio {profile.imbalance_ratio:.1f}"
    ]
    return lines + [f"warning: {w}" for w in profile.warnings]


def _row(m: IntentMetrics) -> list[str]:
    return [
        m.intent, m.tier, str(m.train_count), str(m.augmented_count), str(m.support),
        fmt(m.recall), interval(m.recall_ci), fmt(m.precision), fmt(m.f1), STATUS[m.status],
    ]


def _table(header: list[str], rows: list[list[str]], *, markdown: bool = False) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[c]) for r in rows)) for c, h in enumerate(header)]
    right = [all(_numeric(r[c]) for r in rows) for c in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _numeric(cell: str) -> bool:
    return cell == "n/a" or cell.rstrip("%").lstrip("+").replace(".", "").replace("-", "").isdigit()
