"""The report files of a scored model: report.json, report.md, per_intent.csv and predictions.csv."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from intentbal.config import Config
from intentbal.evaluation.metrics import IntentMetrics, Report
from intentbal.evaluation.scoring import Scores
from intentbal.io.atomic import atomic_write_bytes, atomic_write_text, json_text
from intentbal.io.tables import cell, csv_text, prediction_columns, prediction_rows
from intentbal.reports.html import render_html
from intentbal.reports.text import report_table, summary_lines


def report_markdown(report: Report, *, title: str = "intentbal report", figures: Sequence[str] = ()) -> str:
    """The report in Markdown; ``figures`` names PNGs under ``plots/`` to show after the summary."""
    parts = [f"# {title}", "", *[f"- {line}" for line in summary_lines(report)], ""]
    parts += [f"![{name}](plots/{name}.png)" for name in figures] + ([""] if figures else [])
    parts += [
        f"Intents rarest first. Status against recall {report.summary.recall_threshold:.2f}: `FAIL` when the "
        "whole 95% interval lies under it, `AT RISK` when the interval straddles it, `too few` under "
        f"{report.summary.min_support} eval examples, `n/a` without any.",
        "",
        report_table(report, markdown=True),
    ]
    return "\n".join(parts) + "\n"


def per_intent_csv(report: Report) -> str:
    buf = io.StringIO()
    fields = list(IntentMetrics.__dataclass_fields__)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for m in report.intents:
        writer.writerow({k: cell(v) for k, v in vars(m).items()})
    return buf.getvalue()


def write_report(
    folder: Path,
    report: Report,
    *,
    title: str = "intentbal report",
    extra: dict | None = None,
    figures: Sequence[str] = (),
) -> None:
    """``report.json`` (with ``extra`` sections), ``report.md`` and ``per_intent.csv`` in ``folder``."""
    atomic_write_text(folder / "report.json", json_text({**report.to_dict(), **(extra or {})}))
    atomic_write_text(folder / "report.md", report_markdown(report, title=title, figures=figures))
    atomic_write_text(folder / "per_intent.csv", per_intent_csv(report))


def predictions_csv(
    texts: Sequence[str],
    predictions: Sequence[str],
    confidences: Sequence[float],
    gold: Sequence[str] | None = None,
) -> str:
    """CSV ``text,prediction,confidence`` and, with ``gold``, an ``intent`` column."""
    rows = prediction_rows(texts, predictions, confidences, gold=gold)
    return csv_text(rows, prediction_columns(labelled=gold is not None))


def write_scores(config: Config, out: Path, scores: Scores, *, extra_figures: dict[str, bytes] | None = None) -> None:
    """Every report file of ``scores`` into the folder ``out``: ``report.json``, ``report.md``,
    ``per_intent.csv``, ``predictions.csv``, ``fallback_curve.json`` and, with
    ``evaluate.plots``, ``report.html`` and ``plots/`` (with ``extra_figures`` among them)."""
    data, report, fallback = scores.data, scores.report, scores.fallback
    figures: dict[str, bytes] = {}
    if config.evaluate.plots:
        figures = {**_figures(config, scores), **(extra_figures or {})}
        for name, png in figures.items():
            atomic_write_bytes(out / "plots" / f"{name}.png", png)
        atomic_write_text(out / "report.html", render_html(report, figures=figures, fallback=fallback))
    write_report(out, report, extra={"fallback": fallback.summary()}, figures=list(figures))
    atomic_write_text(out / "fallback_curve.json", json_text(fallback.curve))
    atomic_write_text(out / "predictions.csv",
                      predictions_csv(data.texts, scores.predicted, scores.confidence, data.intents))


def _figures(config: Config, scores: Scores) -> dict[str, bytes]:
    from intentbal.reports import plots

    oos = config.data.oos_label
    keep = [i for i, g in enumerate(scores.data.intents) if g != oos]
    gold = [scores.data.intents[i] for i in keep]
    predicted = [scores.predicted[i] for i in keep]
    rare = scores.report.summary.tail_intents[:8]
    probs: Any = scores.probabilities[keep]
    return {
        "recall_vs_count": plots.recall_vs_count(scores.report),
        "confusions": plots.confusion_matrix(gold, predicted),
        "pr_rare": plots.pr_curves(gold, probs, scores.intents, rare),
        "fallback": plots.fallback_curves(scores.fallback.curve, rare, scores.fallback.threshold),
    }
