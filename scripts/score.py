"""Score a predictions file on its own, without importing intentbal (so it can check intentbal).

  python scripts/score.py PREDICTIONS.csv --train TRAIN [--oos-label oos] [--output scores.json]

PREDICTIONS.csv has a header with at least the columns ``intent`` (the gold intent) and
``prediction``, as intentbal's ``predictions.csv`` (``text,prediction,confidence,intent``) and
the baselines' (``text,intent,prediction``) do. TRAIN gives each intent's training count: a
training CSV (column ``intent``, else ``category`` or ``label``) or a JSON object
``{intent: count}`` such as BANKING77-LT's ``train_counts.json``.

Prints one JSON object (and writes it to --output):

- ``accuracy``: share of rows whose prediction is the gold intent (out-of-scope rows left out);
- ``macro_f1``, ``macro_recall``: unweighted means over the gold intents;
- ``tail_recall``: mean recall of the third (at least one) of the gold intents with the fewest
  training examples, ties broken by name; ``tail_intents`` lists them;
- ``worst_recall`` and ``worst_intent``: the lowest recall (ties: rarest, then by name);
- ``below_50``: how many intents have recall under 0.5; ``below_50_intents`` names them;
- ``recall_by_count``: the gold intents grouped by their training count (from TRAIN) into the
  buckets ``2-4``, ``5-9``, ``10-29`` and ``30+``; for each, ``{"recall": mean recall of its
  intents, "intents": how many}``, with ``recall`` null (never 0) for a bucket without intents.
  Gold intents with fewer than 2 training examples (none, or one) fall in no bucket;
- ``n``: rows scored; with --oos-label, also ``oos_recall``, the share of out-of-scope rows
  predicted as out of scope (the label is then left out of the per-intent measures).

Numbers are rounded to 4 decimals.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

INTENT_COLUMNS = ("intent", "category", "label")
# (name, lowest training count, highest or None) of the recall_by_count buckets
COUNT_BUCKETS: tuple[tuple[str, int, int | None], ...] = (("2-4", 2, 4), ("5-9", 5, 9), ("10-29", 10, 29),
                                                          ("30+", 30, None))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("predictions", type=Path, help="CSV with the columns intent and prediction")
    ap.add_argument("--train", type=Path, required=True, help="training CSV or JSON {intent: count}")
    ap.add_argument("--oos-label", help="the out-of-scope label, left out of the per-intent measures")
    ap.add_argument("--output", type=Path, help="also write the JSON object here")
    a = ap.parse_args(argv)
    try:
        scores = score(a.predictions, a.train, oos_label=a.oos_label)
    except (OSError, ValueError, KeyError) as exc:
        print(f"score: error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(scores)
    if a.output:
        tmp = a.output.with_name(a.output.name + ".tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(a.output)
    print(text)
    return 0


def score(predictions: Path, train: Path, *, oos_label: str | None = None) -> dict:
    """The measures above for ``predictions`` with training counts from ``train``."""
    gold, predicted = read_predictions(predictions)
    counts = training_counts(train)
    in_scope = [(g, p) for g, p in zip(gold, predicted) if g != oos_label]
    if not in_scope:
        raise ValueError(f"{predictions}: expected rows with a gold intent, found none")
    support = Counter(g for g, _ in in_scope)
    hits = Counter(g for g, p in in_scope if g == p)
    predicted_as = Counter(predicted)
    intents = sorted(support)
    recall = {i: hits[i] / support[i] for i in intents}
    f1 = {}
    for i in intents:
        precision = hits[i] / predicted_as[i] if predicted_as[i] else 0.0
        f1[i] = 2 * precision * recall[i] / (precision + recall[i]) if precision + recall[i] else 0.0
    rarest_first = sorted(intents, key=lambda i: (counts.get(i, 0), i))
    tail = rarest_first[: max(1, len(intents) // 3)]
    worst = min(rarest_first, key=lambda i: recall[i])  # min keeps the first, so the rarest of a tie
    out: dict = {
        "n": len(gold),
        "accuracy": sum(g == p for g, p in in_scope) / len(in_scope),
        "macro_f1": sum(f1.values()) / len(intents),
        "macro_recall": sum(recall.values()) / len(intents),
        "tail_recall": sum(recall[i] for i in tail) / len(tail),
        "worst_recall": recall[worst],
        "worst_intent": worst,
        "below_50": sum(recall[i] < 0.5 for i in intents),
        "below_50_intents": [i for i in rarest_first if recall[i] < 0.5],
        "tail_intents": tail,
        "recall_by_count": recall_by_count(recall, counts),
    }
    oos = [p for g, p in zip(gold, predicted) if oos_label is not None and g == oos_label]
    if oos:
        out["oos_recall"] = sum(p == oos_label for p in oos) / len(oos)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def recall_by_count(recall: dict[str, float], counts: dict[str, int]) -> dict[str, dict]:
    """Each bucket of COUNT_BUCKETS: the mean recall of the intents in ``recall`` whose training count
    falls in it (None when none does; rounded to 4 decimals) and how many they are."""
    out: dict[str, dict] = {}
    for name, low, high in COUNT_BUCKETS:
        members = [r for i, r in recall.items()
                   if counts.get(i, 0) >= low and (high is None or counts.get(i, 0) <= high)]
        out[name] = {"recall": round(sum(members) / len(members), 4) if members else None, "intents": len(members)}
    return out


def read_predictions(path: Path) -> tuple[list[str], list[str]]:
    """(gold intents, predicted intents) of a predictions CSV."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"intent", "prediction"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: expected the columns intent and prediction, found "
                             f"{','.join(reader.fieldnames or []) or 'no header'}")
        rows = list(reader)
    return [r["intent"] for r in rows], [r["prediction"] for r in rows]


def training_counts(path: Path) -> dict[str, int]:
    """Each intent's training count, from a JSON object or a training CSV."""
    if path.suffix == ".json":
        counts = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(counts, dict):
            raise ValueError(f"{path}: expected a JSON object {{intent: count}}, found {type(counts).__name__}")
        return {str(k): int(v) for k, v in counts.items()}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        column = next((c for c in INTENT_COLUMNS if c in (reader.fieldnames or ())), None)
        if column is None:
            raise ValueError(f"{path}: expected a column {' or '.join(INTENT_COLUMNS)}, found "
                             f"{','.join(reader.fieldnames or []) or 'no header'}")
        return dict(Counter(row[column] for row in reader))


if __name__ == "__main__":
    sys.exit(main())
