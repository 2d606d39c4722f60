"""The release gate and report comparison: pure functions of a report (a :class:`Report`, or the
contents of a ``report.json`` read from disk, both read through one typed view, :class:`Reported`).

A failure is an intent whose whole recall interval lies under the threshold; an interval
that straddles it is *at risk*, and too few examples are *insufficient evidence*. A
regression against a baseline counts when a one-sided two-proportion z-test finds the
new recall lower at level ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from intentbal.evaluation.metrics import Report

ALPHA = 0.05
Verdict = Literal["worse", "better", "same", "n/a"]


@dataclass(frozen=True, kw_only=True)
class IntentRecall:
    """One intent's line of a report, as far as the gate reads it."""

    intent: str
    train_count: int
    support: int
    recall: float | None  # None: not evaluable


@dataclass(frozen=True, kw_only=True)
class Reported:
    """What the gate reads of a report: its verdicts, its tail recall and every intent's recall."""

    recall_threshold: float
    failing: list[str]
    at_risk: list[str]
    insufficient_evidence: list[str]
    tail_recall: float
    intents: list[IntentRecall]


def reported(report: Report | Mapping[str, Any]) -> Reported:
    """The gate's view of ``report``: a :class:`Report`, or ``report.json``'s contents."""
    if not isinstance(report, Mapping):
        t = report.summary
        return Reported(recall_threshold=t.recall_threshold, failing=t.failing, at_risk=t.at_risk,
                        insufficient_evidence=t.insufficient_evidence, tail_recall=t.tail_recall,
                        intents=intent_recalls(report))
    s = report["summary"]
    return Reported(recall_threshold=s["recall_threshold"], failing=list(s["failing"]), at_risk=list(s["at_risk"]),
                    insufficient_evidence=list(s["insufficient_evidence"]), tail_recall=s["tail_recall"],
                    intents=intent_recalls(report))


def intent_recalls(report: Report | Mapping[str, Any]) -> list[IntentRecall]:
    """Every intent's recall in ``report``; a ``report.json`` of an older version may lack a count,
    which the comparison reads as 0 (a comparison needs no summary)."""
    if not isinstance(report, Mapping):
        return [IntentRecall(intent=m.intent, train_count=m.train_count, support=m.support, recall=m.recall)
                for m in report.intents]
    return [IntentRecall(intent=r["intent"], train_count=r.get("train_count", 0), support=r.get("support", 0),
                         recall=r.get("recall")) for r in report["intents"]]


@dataclass(frozen=True, kw_only=True)
class Change:
    """One intent's recall in two reports."""

    intent: str
    support_a: int
    support_b: int
    recall_a: float | None
    recall_b: float | None
    p_lower: float | None  # one-sided p-value that recall_b < recall_a
    p_higher: float | None  # one-sided p-value that recall_b > recall_a

    @property
    def difference(self) -> float | None:
        if self.recall_a is None or self.recall_b is None:
            return None
        return self.recall_b - self.recall_a

    def verdict(self, alpha: float = ALPHA) -> Verdict:
        if self.p_lower is None:
            return "n/a"
        if self.p_lower < alpha:
            return "worse"
        return "better" if self.p_higher is not None and self.p_higher < alpha else "same"


@dataclass(frozen=True, kw_only=True)
class AuditResult:
    passed: bool
    failing: list[str]
    at_risk: list[str]
    insufficient_evidence: list[str]
    tail_recall: float
    tail_failed: bool
    regressions: list[Change] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    compared: list[Change] = field(default_factory=list)  # every intent against the baseline, when given


@dataclass(frozen=True, kw_only=True)
class Scope:
    """Which intents two reports could be compared on: those with a recall in both."""

    shared: list[str]
    only_a: list[str]  # with a recall in report a only
    only_b: list[str]


def comparison_scope(changes: list[Change]) -> Scope:
    """The intents of ``changes`` (from :func:`compare_reports`) evaluated in both, or in one only."""
    return Scope(
        shared=[c.intent for c in changes if c.recall_a is not None and c.recall_b is not None],
        only_a=[c.intent for c in changes if c.recall_a is not None and c.recall_b is None],
        only_b=[c.intent for c in changes if c.recall_a is None and c.recall_b is not None],
    )


def two_proportion_p(k_a: int, n_a: int, k_b: int, n_b: int) -> tuple[float, float] | None:
    """One-sided p-values (b lower than a, b higher than a) of a pooled two-proportion z-test."""
    if n_a == 0 or n_b == 0:
        return None
    pooled = (k_a + k_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 1.0, 1.0
    z = (k_b / n_b - k_a / n_a) / se
    lower = 0.5 * math.erfc(-z / math.sqrt(2))  # P(Z <= z)
    return lower, 1.0 - lower


def compare_reports(a: Report | Mapping[str, Any], b: Report | Mapping[str, Any]) -> list[Change]:
    """Per-intent recall of report ``a`` against report ``b``, every intent of either, rarest first."""
    rows_a = {r.intent: r for r in intent_recalls(a)}
    rows_b = {r.intent: r for r in intent_recalls(b)}
    order = sorted(set(rows_a) | set(rows_b), key=lambda i: ((rows_b.get(i) or rows_a[i]).train_count, i))
    changes = []
    for intent in order:
        ra, rb = rows_a.get(intent), rows_b.get(intent)
        n_a, n_b = (ra.support if ra else 0), (rb.support if rb else 0)
        rec_a, rec_b = (ra.recall if ra else None), (rb.recall if rb else None)
        test = None
        if rec_a is not None and rec_b is not None:
            test = two_proportion_p(round(rec_a * n_a), n_a, round(rec_b * n_b), n_b)
        p_lower, p_higher = test or (None, None)
        changes.append(Change(intent=intent, support_a=n_a, support_b=n_b, recall_a=rec_a, recall_b=rec_b,
                              p_lower=p_lower, p_higher=p_higher))
    return changes


def audit_report(
    report: Report | Mapping[str, Any],
    *,
    min_tail_recall: float | None = None,
    baseline: Report | Mapping[str, Any] | None = None,
    alpha: float = ALPHA,
) -> AuditResult:
    """Judge a report made with ``recall_threshold`` as the minimum recall (see ``evaluate``)."""
    s = reported(report)
    reasons = [f"intent {i!r}: recall interval wholly under {s.recall_threshold:.2f}" for i in s.failing]
    tail_failed = min_tail_recall is not None and s.tail_recall < min_tail_recall
    if tail_failed:
        reasons.append(f"tail recall {s.tail_recall:.3f} under the required {min_tail_recall:.3f}")
    regressions, compared = [], []
    if baseline is not None:
        compared = compare_reports(baseline, report)
        regressions = [c for c in compared if c.verdict(alpha) == "worse"]
        reasons += [f"intent {c.intent!r}: recall fell from {c.recall_a:.3f} to {c.recall_b:.3f} "
                    f"(one-sided two-proportion z-test, p={c.p_lower:.3g} < {alpha})" for c in regressions]
    return AuditResult(
        passed=not reasons,
        failing=s.failing,
        at_risk=s.at_risk,
        insufficient_evidence=s.insufficient_evidence,
        tail_recall=s.tail_recall,
        tail_failed=tail_failed,
        regressions=regressions,
        reasons=reasons,
        compared=compared,
    )
