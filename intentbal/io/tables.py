"""Tables written to the format a file's suffix names: CSV, JSON Lines or Parquet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from intentbal.io.atomic import atomic_file, atomic_write_text


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


def write_table(path: Path, rows: Sequence[Mapping[str, object]], *, columns: Sequence[str]) -> None:
    """Write ``rows`` (each with exactly ``columns``) to ``path`` atomically, in the format its
    suffix names: ``.csv`` (a header row), ``.jsonl`` (one object per line) or ``.parquet``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        atomic_write_text(path, csv_text(rows, columns))
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


def csv_text(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    return buf.getvalue()


def cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return value
