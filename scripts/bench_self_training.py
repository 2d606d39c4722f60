"""How confident must the teacher be? Self-training at several thresholds, over seeds.

  python scripts/bench_self_training.py [--data data/benchmarks/banking77-lt] [--unlabeled DATA/unlabeled.csv]
      [--out runs/bench-self-training] [--seeds 0 1] [--thresholds 0.9 0.7 0.5] [--truth FILE]
      [--jobs 1] [--set KEY=VALUE ...]

Each threshold and seed is one ``intentbal train --train DATA/train.csv --validation
DATA/validation.csv --eval DATA/validation.csv --unlabeled POOL`` with
``self_training.threshold`` set (the runs of scripts/bench_augment.py: nothing is held out of
train, so there is no refit, and the teacher of a seed is the same model at every threshold),
plus ``none``, the recipe without the pool. Each is scored on validation: macro recall and tail
recall. These numbers are for choosing a threshold, not for reporting quality (that is test's job).

``--truth FILE`` (a labelled copy of the pool, e.g. BANKING77's own ``train.csv`` for
``unlabeled.csv``; columns text and intent or category) also scores what each run borrowed: the
rows kept (``pseudo_labels.jsonl``) and the share whose teacher label matches the truth. Extra
``--set`` values apply to every run (a smoke test: ``--seeds 0 --set train.epochs=0.05``).
``--jobs N`` trains N runs at once. Prints a JSON line per run and then the table (mean ± sd over
seeds); ``OUT/results.json`` keeps every score.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

from bench_augment import run_recipes, table  # the same runs, measures and table as the augmentation benchmark

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "benchmarks" / "banking77-lt",
                    help="folder with train.csv and validation.csv")
    ap.add_argument("--unlabeled", type=Path, help="the pool (default: DATA/unlabeled.csv)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-self-training"), help="folder for the runs and scores")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.7, 0.5])
    ap.add_argument("--truth", type=Path, help="a labelled copy of the pool, to score the borrowed labels")
    ap.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every run (repeatable)")
    a = ap.parse_args()
    a.out = a.out.resolve()  # the runs train from the repository root; the table reads them from here

    pool = (a.unlabeled or a.data / "unlabeled.csv").resolve()
    recipes = {"none": [], **{f"threshold {t:g}": [f"data.unlabeled={pool}", f"self_training.threshold={t:g}"]
                              for t in a.thresholds}}
    print(table(run_recipes(a, recipes)))
    if a.truth:
        print()
        print(borrowed_table(a.out, [n for n in recipes if n != "none"], a.seeds, truth_labels(a.truth)))


def truth_labels(path: Path) -> dict[str, str]:
    """Text (stripped, as intentbal reads it) to intent, from a CSV with a text column and an intent
    (or category) column."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        found = list(reader.fieldnames or [])
        column = next((c for c in ("intent", "category") if c in found), None)
        if "text" not in found or column is None:
            raise SystemExit(f"{path}: expected columns text and intent (or category), found {found}; "
                             "pass a labelled copy of the pool")
        return {row["text"].strip(): row[column] for row in reader}


def borrowed(pseudo_labels: list[dict[str, object]], truth: dict[str, str]) -> tuple[int, float | None]:
    """Rows kept, and the share of them whose label is the truth's (None when nothing was kept)."""
    right = sum(truth.get(str(p["text"])) == p["intent"] for p in pseudo_labels)
    return len(pseudo_labels), right / len(pseudo_labels) if pseudo_labels else None


def borrowed_table(out: Path, names: list[str], seeds: list[int], truth: dict[str, str]) -> str:
    """Markdown: per threshold, the rows borrowed and their precision, mean ± sd over seeds."""
    lines = ["| recipe | rows borrowed | share labelled right |", "| --- | --- | --- |"]
    for name in names:
        kept, precision = [], []
        for seed in seeds:
            run = out / name / f"seed{seed}"
            if not run.is_dir():
                raise SystemExit(f"{run}: expected a finished run, found none; run the benchmark first")
            path = run / "pseudo_labels.jsonl"  # absent when nothing was borrowed
            text = path.read_text(encoding="utf-8") if path.is_file() else ""
            n, share = borrowed([json.loads(row) for row in text.splitlines()], truth)
            kept.append(float(n))
            if share is not None:
                precision.append(share)
        lines.append(f"| {name} | {_mean_sd(kept, 0)} | {_mean_sd(precision, 3)} |")
    return "\n".join(lines)


def _mean_sd(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


if __name__ == "__main__":
    main()
