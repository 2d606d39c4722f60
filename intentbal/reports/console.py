"""What each command says on the terminal when it is done: its results as lines of text.

Pure functions of the library's typed results; the CLI prints what they return and decides nothing.
Every count names the model it belongs to: with a refit, the model reported on and the model
shipped trained on different rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from intentbal.listing import listing
from intentbal.reports.text import compare_table, profile_lines, profile_table, report_table, scope_line, summary_lines

if TYPE_CHECKING:
    from intentbal.commands.train import TrainRun
    from intentbal.data.profiling import Profile
    from intentbal.evaluation.gate import AuditResult, Change
    from intentbal.evaluation.metrics import Report
    from intentbal.evaluation.suggestions import SuggestResult
    from intentbal.inference.export import ExportResult
    from intentbal.rebalance.augmentation import AugmentResult
    from intentbal.training.recipe import Fitted


def profile_summary(profile: Profile, *, output: Path) -> list[str]:
    return [profile_table(profile), *profile_lines(profile), f"wrote {output}"]


def augment_summary(result: AugmentResult, *, output: Path) -> list[str]:
    by_tool = Counter(row.augmenter for row in result.synthetic)
    tools = ", ".join(f"{k} {v}" for k, v in sorted(by_tool.items())) or "none needed"
    lines = [f"target {result.target} per intent: {len(result.synthetic)} synthetic rows ({tools})"]
    if result.protected:
        lines.append("words the augmenters left intact (augment.protect_words):")
        lines += [f"  {intent}: {', '.join(words) or '-'}" for intent, words in result.protected.items()]
    lines += [f"warning: {warning}" for warning in result.warnings]
    return [*lines, f"wrote {output}"]


def train_summary(run: TrainRun) -> list[str]:
    """The end of ``intentbal train``: what each model trained on, its tau, the fallback, the report."""
    from intentbal.evaluation.fallback import describe_threshold

    m = run.metrics
    refit = run.refit is not None
    fits = ((" of the model reported on", m.evaluated), (" of the shipped refit" if refit else "", m.shipped))
    resumed = [f"step {f.resumed_from_step}{name}" for name, f in fits if f is not None and f.resumed_from_step]
    lines = [f"resumed from the checkpoint at {' and '.join(resumed)}"] if resumed else []
    lines += profile_lines(run.profile)
    lines += _rows_lines(run)
    if run.adjustment.tau or run.adjustment.chosen_on != "given":
        reported = run.reported_adjustment
        other = (f"; {reported.tau:g} for the model reported on"
                 if reported is not None and reported.tau != run.adjustment.tau else "")
        lines.append(f"logit adjustment tau {run.adjustment.tau:g} ({run.adjustment.describe()}{other})")
    if run.pseudo:
        borrowed = listing([f"{i} {n}" for i, n in sorted(run.pseudo.items(), key=lambda x: -x[1])])
        lines.append(f"self-training: {sum(run.pseudo.values())} unlabeled utterances labelled by the teacher "
                     f"joined the shipped model's training ({borrowed})")
    if run.fallback is not None:
        lines.append(f"fallback threshold {run.fallback.threshold:.2f} saved with the model "
                     f"({describe_threshold(run.fallback.chosen_on)}): predict answers {run.fallback.intent!r} "
                     "under it")
    lines.append(_trained_line(run))
    if run.report is not None:
        lines += [report_table(run.report), *summary_lines(run.report)]
    lines += [f"warning: {warning}" for warning in run.warnings]
    return [*lines, f"wrote {run.output_dir}"]


def _rows_lines(run: TrainRun) -> list[str]:
    """The rows each model trained on, labelled and augmented, named by model."""
    if run.refit is None:
        return [f"the model (reported on and shipped) trained on {_rows(run.shipped)}"]
    return [f"the model reported on trained on {_rows(run.evaluated)}",
            f"the shipped model (refit) trained on {_rows(run.shipped)}"]


def _rows(fitted: Fitted) -> str:
    added = len(fitted.rows.made_by("augment"))
    return f"{len(fitted.data)} labelled rows" + (f" + {added} augmented for the rare intents" if added else "")


def _trained_line(run: TrainRun) -> str:
    s = run.metrics.shipped
    trained = f"{s.steps} steps in {s.train_seconds:.1f} s ({s.train_samples_per_second:.1f} samples/s)"
    e = run.metrics.evaluated
    if run.refit is None or e is None:
        return f"trained {trained}"
    return (f"trained {e.steps} steps in {e.train_seconds:.1f} s without the {run.refit.held_out_rows} held-out rows "
            f"(the model reported on), then refit on all {run.refit.rows} rows: {trained}")


def evaluate_summary(report: Report, *, wrote: Sequence[Path]) -> list[str]:
    return [report_table(report), *summary_lines(report), "wrote " + " and ".join(str(p) for p in wrote)]


def audit_summary(report: Report, result: AuditResult, *, min_recall: float, baseline: Path | None) -> list[str]:
    lines = [report_table(report), *summary_lines(report)]
    if baseline is not None:
        scope = scope_line(result.compared, a="the baseline", b="this report")
        lines.append(f"compared with baseline {baseline}: {scope}")
    lines += [f"regression: {c.intent} {c.recall_a:.3f} -> {c.recall_b:.3f} (p={c.p_lower:.3g})"
              for c in result.regressions]
    if result.at_risk:
        lines.append(f"at risk (interval straddles {min_recall:.2f}): {listing(result.at_risk, see='report.json')}")
    if result.insufficient_evidence:
        lines.append(f"not judged (too few eval examples): {listing(result.insufficient_evidence, see='report.json')}")
    if result.passed:
        return [*lines, f"AUDIT PASSED: no intent's recall interval lies wholly under {min_recall:.2f}"]
    return [*lines, "AUDIT FAILED: " + "; ".join(result.reasons)]


def compare_summary(changes: Sequence[Change], *, a: Path, b: Path) -> list[str]:
    worse = [c.intent for c in changes if c.verdict() == "worse"]
    better = [c.intent for c in changes if c.verdict() == "better"]
    return [compare_table(changes), f"compared A {a} and B {b}: {scope_line(changes, a='A', b='B')}",
            f"significantly worse in B: {listing(worse, see='the table above') or 'none'}; "
            f"better: {listing(better, see='the table above') or 'none'} (one-sided two-proportion z-test, p < 0.05)"]


def cv_summary(report: Report, *, models: int, folds: int, repeats: int, output: Path) -> list[str]:
    return [report_table(report), *summary_lines(report),
            f"pooled over {models} models ({folds} folds x {repeats} repeat(s)); wrote {output}"]


def suggest_summary(result: SuggestResult, *, output: Path) -> list[str]:
    from intentbal.evaluation.suggestions import LIKELY

    chosen, pool = result.selection, result.pool
    by_reason = Counter(chosen.reasons.values())
    reasons = ", ".join(f"{n} {r}" for r, n in by_reason.items())
    lines = [f"{len(chosen.reasons)} intent(s) selected by {chosen.source}" + (f" ({reasons})" if reasons else "")
             + (f": {listing(list(chosen.reasons), see=str(output))}" if chosen.reasons else "")]
    if chosen.unknown:
        lines.append(f"left out, not intents of the model: {listing(chosen.unknown)}")
    likely = sum(s.kind == LIKELY for s in result.suggestions)
    lines.append(f"{len(pool.texts)} new texts of {result.pool_rows} rows (dropped: {pool.duplicates} repeat(s), "
                 f"{pool.in_training} training text(s)): {likely} likely and "
                 f"{len(result.suggestions) - likely} near miss(es)")
    if result.truncated:
        lines.append(f"warning: {result.truncated} text(s) longer than the model's max_length were truncated")
    return [*lines, f"wrote {len(result.suggestions)} rows to {output}; fill confirmed_intent to keep a row"]


def export_summary(result: ExportResult) -> list[str]:
    return [f"ONNX Runtime vs PyTorch: max abs logit difference {result.max_abs_diff:.2g} over "
            f"{result.texts_checked} texts, batched and single (tolerance {result.atol:g})",
            f"wrote {result.path} and {result.check_path}"]
