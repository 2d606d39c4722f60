"""Rendering and writing reports: Markdown, terminal tables, JSON, and tables as CSV, JSONL or Parquet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intentbal.audit import Change, comparison_scope
from intentbal.evaluate import IntentMetrics, Report
from intentbal.listing import listing
from intentbal.outputs import atomic_file, atomic_write_text, json_text
from intentbal.overlap import Overlap, overlap_warning

if TYPE_CHECKING:
    from intentbal.profile import Profile

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
    overlap = overlap_warning(Overlap(**s.overlap), see="report.json") if s.overlap else None
    if overlap:
        lines.append(f"warning: {overlap}")
    if s.refit:
        from_validation = s.refit.get("validation_rows", 0)
        rows = (f"{s.refit['rows']} labelled rows ({from_validation} of them from the validation file)"
                if from_validation else f"{s.refit['rows']} training rows")
        lines.append(f"measured on the model trained without the {s.refit['held_out_rows']} held-out rows; "
                     f"the shipped model was then refit on all {rows}")
    return lines


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
        writer.writerow({k: _cell(v) for k, v in vars(m).items()})
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


def predictions_csv(
    texts: Sequence[str],
    predictions: Sequence[str],
    confidences: Sequence[float],
    gold: Sequence[str] | None = None,
) -> str:
    """CSV ``text,prediction,confidence`` and, with ``gold``, an ``intent`` column."""
    rows = prediction_rows(texts, predictions, confidences, gold=gold)
    return _csv_text(rows, prediction_columns(labelled=gold is not None))


def prediction_columns(*, labelled: bool) -> list[str]:
    """The columns of :func:`prediction_rows`: ``intent`` only for ``labelled`` texts."""
    return ["text", "prediction", "confidence"] + (["intent"] if labelled else [])


def prediction_rows(
    texts: Sequence[str],
    predictions: Sequence[str],
    confidences: Sequence[float],
    *,
    gold: Sequence[str] | None = None,
    rankings: Sequence[Sequence[tuple[str, float]]] | None = None,
    flat: bool = False,
) -> list[dict[str, Any]]:
    """One dict per text, whatever file format it is written to: ``text``, ``prediction``,
    ``confidence`` (4 decimals), then with ``rankings`` either ``ranking`` (a list of
    ``{"intent", "confidence"}``, for JSON) or, with ``flat``, ``intent_1, confidence_1, ...,
    intent_N, confidence_N`` (for tables), then ``intent`` when ``gold`` is given."""
    rows = []
    for n, (text, prediction, confidence) in enumerate(zip(texts, predictions, confidences)):
        row: dict[str, Any] = {"text": text, "prediction": prediction, "confidence": round(float(confidence), 4)}
        if rankings is not None:
            ranked = [{"intent": i, "confidence": round(float(c), 4)} for i, c in rankings[n]]
            if flat:
                for rank, item in enumerate(ranked, start=1):
                    row[f"intent_{rank}"], row[f"confidence_{rank}"] = item["intent"], item["confidence"]
            else:
                row["ranking"] = ranked
        if gold is not None:
            row["intent"] = gold[n]
        rows.append(row)
    return rows


TABLE_SUFFIXES = (".csv", ".jsonl", ".parquet")
RASA_SUFFIXES = (".yml", ".yaml")


def rasa_nlu_yaml(rows: Sequence[Mapping[str, object]]) -> str:
    """Rasa NLU YAML (``version: "3.1"``) of ``{text, intent[, source_text, augmenter]}`` rows, one
    ``- intent:`` per intent in first-seen order, in Rasa's per-example form so that a synthetic
    row keeps its provenance as ``metadata``."""
    import yaml

    examples: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        example: dict[str, object] = {"text": row["text"]}
        if row.get("augmenter"):
            example["metadata"] = {"augmenter": row["augmenter"], "source_text": row.get("source_text", "")}
        examples.setdefault(str(row["intent"]), []).append(example)
    nlu = [{"intent": intent, "examples": items} for intent, items in examples.items()]
    return yaml.safe_dump({"version": "3.1", "nlu": nlu}, sort_keys=False, allow_unicode=True, width=1000)


def write_table(path: Path, rows: Sequence[Mapping[str, object]], *, columns: Sequence[str]) -> None:
    """Write ``rows`` (each with exactly ``columns``) to ``path`` atomically, in the format its
    suffix names: ``.csv`` (a header row), ``.jsonl`` (one object per line) or ``.parquet``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        atomic_write_text(path, _csv_text(rows, columns))
    elif suffix == ".jsonl":
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(c, _arrow_type([r[c] for r in rows])) for c in columns])
        with atomic_file(path) as tmp:
            pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), tmp)
    else:  # callers check the suffix before any work; this is the last guard
        raise ValueError(f"{path}: no writer for {suffix!r}; expected one of {', '.join(TABLE_SUFFIXES)}")


def _arrow_type(values: Sequence[object]) -> Any:
    """Parquet's type for a column: float64 or int64 when every value is one, else string."""
    import pyarrow as pa

    if values and all(isinstance(v, float) for v in values):
        return pa.float64()
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    return pa.string()


def _csv_text(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    return buf.getvalue()


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return value


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
