"""Does the shipped model gain from training on the validation file too (``train.refit: all``)?
Measured on validation only, so the answer can choose the default.

  python scripts/bench_refit.py [--data data/benchmarks/banking77-lt] [--out runs/bench-refit]
      [--seeds 0 1 2 3 4] [--jobs 1] [--set KEY=VALUE ...]

For each seed, DATA/validation.csv is split per intent into two halves (seeded; an intent with an
odd count gives its extra row to either half by coin). Each half in turn plays the validation file
and the other the eval file of one run of the user's command:

  intentbal train --train DATA/train.csv --validation HALF_1.csv --eval HALF_2.csv

Nothing is held out of train.csv, so the evaluated model trains on all of it, with tau chosen on
HALF_1: the model ``train.refit: train`` (and ``off``) ships. Its predictions on HALF_2 are the
report's ``predictions.csv``. With ``train.refit: all`` the shipped model is then refit on
train.csv plus HALF_1 with that tau, and ``intentbal predict`` scores it on HALF_2 as well. Both
are scored by scripts/score.py with train.csv's counts (macro recall, tail recall: the third of
the intents with the fewest training rows, worst recall), so each run is a paired comparison on
rows neither model trained on or chose anything by. Each seed gives two runs; the table shows
mean ± sd over all of them and the mean paired difference.

``--set`` values apply to every run (a smoke test: ``--seeds 0 --set train.epochs=0.05``).
``--jobs N`` trains N runs at once, each with OMP_NUM_THREADS=2 unless set. Prints a JSON line per
run and then the table; ``OUT/results.json`` keeps every score.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from score import score  # the project's scorer, in process

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("macro_recall", "tail_recall", "worst_recall")
MODELS = ("train only", "train + validation")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "benchmarks" / "banking77-lt",
                    help="folder with train.csv and validation.csv")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-refit"), help="folder for the runs and scores")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every run (repeatable)")
    a = ap.parse_args()
    runs = []
    for seed in a.seeds:
        halves = write_halves(a.data / "validation.csv", a.out / f"seed{seed}", seed=seed)
        runs += [(seed, halves[0], halves[1]), (seed, halves[1], halves[0])]
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        results = list(pool.map(lambda run: train_and_score(a, *run), runs))
    (a.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(table(results))


def write_halves(validation: Path, folder: Path, *, seed: int) -> tuple[Path, Path]:
    """``validation`` split per intent into ``folder``/A.csv and B.csv, with the same columns."""
    with open(validation, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns, rows = list(reader.fieldnames or []), list(reader)
    intent = "intent" if "intent" in columns else "category"
    by_intent: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_intent[row[intent]].append(row)
    rng = random.Random(seed)
    halves: tuple[list[dict[str, str]], list[dict[str, str]]] = ([], [])
    for name in sorted(by_intent):
        group = by_intent[name]
        rng.shuffle(group)
        cut = len(group) // 2 + rng.randint(0, len(group) % 2)
        halves[0].extend(group[:cut])
        halves[1].extend(group[cut:])
    folder.mkdir(parents=True, exist_ok=True)
    paths = (folder / "A.csv", folder / "B.csv")
    for path, part in zip(paths, halves):
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(part)
    return paths


def train_and_score(a: argparse.Namespace, seed: int, choose: Path, scored_on: Path) -> dict:
    """One run: train with ``choose`` as validation and ``scored_on`` as eval, then score the
    evaluated model (the report's predictions) and the shipped one (refit all) on ``scored_on``."""
    folder = a.out / f"seed{seed}" / f"choose-{choose.stem}"
    cli = [sys.executable, "-m", "intentbal.cli"]
    sets = [arg for item in ["train.refit=all", f"seed={seed}", "evaluate.plots=false", *a.sets]
            for arg in ("--set", item)]
    env = {"OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1", **os.environ}
    subprocess.run([*cli, "train", "--train", str(a.data / "train.csv"), "--validation", str(choose),
                    "--eval", str(scored_on), "--output", str(folder / "run"), *sets],
                   check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    refit = json.loads((folder / "run" / "report.json").read_text(encoding="utf-8"))["summary"].get("refit")
    if not refit or not refit["validation_rows"]:
        raise SystemExit(f"{folder / 'run'}: expected a model refit on the validation rows, found {refit}")
    subprocess.run([*cli, "predict", "--model", str(folder / "run" / "model"), "--input", str(scored_on),
                    "--output", str(folder / "shipped.csv"), "--overwrite"],
                   check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    result = {"seed": seed, "validation": choose.stem, "eval": scored_on.stem}
    for model, predictions in zip(MODELS, (folder / "run" / "predictions.csv", folder / "shipped.csv")):
        scores = score(predictions, a.data / "train.csv")
        result[model] = {m: scores[m] for m in METRICS}
    print(json.dumps(result), flush=True)
    return result


def table(results: list[dict]) -> str:
    """Markdown: each model's metrics as mean ± sd over the runs, and the mean paired difference."""
    def cell(values: list[float]) -> str:
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"

    lines = [f"| model (scored on the other half, {len(results)} runs) | macro recall | tail recall | worst |",
             "| --- | --- | --- | --- |"]
    for model in MODELS:
        lines.append(f"| {model} | " + " | ".join(cell([r[model][m] for r in results]) for m in METRICS) + " |")
    gains = [cell([r[MODELS[1]][m] - r[MODELS[0]][m] for r in results]) for m in METRICS]
    better = sum(r[MODELS[1]]["macro_recall"] > r[MODELS[0]]["macro_recall"] for r in results)
    lines.append(f"| difference (higher in {better} of {len(results)} runs) | " + " | ".join(gains) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
