"""The default command against the plain Trainer on the same rows, side by side, from start to exit.

  python scripts/bench_default.py [--data data/benchmarks/banking77-lt] [--repeats 1] [--seed 0]
      [--variant "NAME:KEY=VALUE,..."] [--set KEY=VALUE ...] [--model DIR] [--trainer-epochs 10]
      [--out runs/bench-default] [--write BENCHMARKS.md]

In each round, one after another on the same machine, each in a process of its own:

- the plain Trainer (``scripts/hf_trainer_baseline.py``: its usual learning rate 5e-5 and 10
  epochs, fp32 as its defaults run on a CPU) on ``train.csv`` and ``validation.csv`` together,
  the rows intentbal's shipped model trains on, then its predictions for ``test.csv``;
- ``intentbal train --train DATA/train.csv --validation DATA/validation.csv``, the default
  command (two fits, the report and the save), and the same with each ``--variant``'s
  ``--set`` values (by default ``train.precision=fp32``: what a CPU without native bf16 runs).

``--set`` values apply to every intentbal run; ``--model`` is the model of both sides (default: the
all-MiniLM-L6-v2 that intentbal embeds); ``--trainer-epochs`` shortens the Trainer (a smoke test).

Each run's wall time, its ratio to the Trainer's in the same round, and its peak resident memory
go into ``OUT/results.jsonl`` (its output into ``OUT/NAME.log``) and a table (mean over rounds);
with --write the table replaces the block between ``<!-- default-wall:start -->`` and
``<!-- default-wall:end -->``. The Trainer needs the ``bench`` extra (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import statistics
import sys
from pathlib import Path

from bench_pool import slug, timed, write_block  # file names, timed runs, the table between two markers

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- default-wall:start -->", "<!-- default-wall:end -->"
TRAINER = "plain Trainer"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "benchmarks" / "banking77-lt",
                    help="folder with train.csv, validation.csv and test.csv")
    ap.add_argument("--repeats", type=int, default=1, help="rounds of every command")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", action="append", metavar="NAME:KEY=VALUE,...",
                    help="an intentbal run with these --set values (default: fp32)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--model", help="model folder of both sides (default: the embedded all-MiniLM-L6-v2)")
    ap.add_argument("--trainer-epochs", type=float, default=10)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-default"))
    ap.add_argument("--write", type=Path, help="Markdown file whose default-wall block is replaced")
    a = ap.parse_args()
    missing = [n for n in ("train.csv", "validation.csv", "test.csv") if not (a.data / n).is_file()]
    if missing:
        raise SystemExit(f"bench_default: error: --data {a.data}: expected train.csv, validation.csv and test.csv, "
                         f"found no {', '.join(missing)}; pass a folder like data/benchmarks/banking77-lt")
    asked = a.variant or ["fp32 (a CPU without native bf16):train.precision=fp32"]
    variants = [("intentbal (default)", []), *(parse_variant(v) for v in asked)]
    a.out.mkdir(parents=True, exist_ok=True)
    both = a.out / "train+validation.csv"
    concatenate([a.data / "train.csv", a.data / "validation.csv"], both)
    runs = []
    for round_ in range(a.repeats):
        model = ["--model", a.model] if a.model else []
        trainer = run(a, TRAINER, [sys.executable, str(ROOT / "scripts" / "hf_trainer_baseline.py"), "--train",
                                   str(both), "--test", str(a.data / "test.csv"), "--out", str(a.out / "trainer.csv"),
                                   "--epochs", f"{a.trainer_epochs:g}", "--lr", "5e-5", "--seed", str(a.seed), *model],
                      round_=round_)
        runs.append(trainer)
        for name, sets in variants:
            folder = a.out / slug(name)
            cmd = [sys.executable, "-m", "intentbal", "train", "--train", str(a.data / "train.csv"), "--validation",
                   str(a.data / "validation.csv"), "--output", str(folder), "--quiet", "--set", f"seed={a.seed}"]
            sets = [*a.sets, *([f"model.name_or_path={a.model}"] if a.model else []), *sets]
            runs.append(run(a, name, cmd + [x for s in sets for x in ("--set", s)], round_=round_,
                            baseline=trainer["seconds"]))
    table = markdown(runs, command=" ".join(["python", *sys.argv]))
    (a.out / "table.md").write_text(table, encoding="utf-8")
    print(table)
    if a.write:
        write_block(a.write, BEGIN, END, table, script="bench_default")


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, sets = text.partition(":")
    return name.strip(), [s.strip() for s in sets.split(",") if s.strip()]


def concatenate(sources: list[Path], target: Path) -> None:
    """The text and intent columns of every source, one after another, in one CSV file."""
    with target.open("w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(["text", "intent"])
        for source in sources:
            with source.open(newline="", encoding="utf-8") as f:
                w.writerows([row["text"], row["intent"]] for row in csv.DictReader(f))


def run(a: argparse.Namespace, name: str, cmd: list[str], *, round_: int, baseline: float | None = None) -> dict:
    """One command in a process of its own: its wall time, its ratio to ``baseline`` and its peak memory."""
    log = a.out / f"{slug(name)}.log"
    ok, seconds, peak_mb = timed(cmd, log, cwd=ROOT)
    if not ok:
        raise SystemExit(f"bench_default: error: {name}: the command failed; its output: {log}")
    result = {"command": name, "round": round_, "seconds": round(seconds, 1),
              "against_trainer": None if baseline is None else round(seconds / baseline, 3),
              "peak_mb": peak_mb, "load": [round(x, 2) for x in os.getloadavg()]}
    with (a.out / "results.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(result) + "\n")
    print(json.dumps(result), flush=True)
    return result


def markdown(runs: list[dict], *, command: str) -> str:
    """One row per command: its mean wall time, and its mean ratio to the Trainer of the same round."""
    lines = [f"Measured {dt.date.today()} on {os.cpu_count()} CPU cores ({platform.machine()}), "
             f"Python {platform.python_version()}: `{command}`", "",
             "| command | rounds | wall time, start to exit | against the plain Trainer | peak memory |",
             "| --- | --- | --- | --- | --- |"]
    for name in dict.fromkeys(r["command"] for r in runs):
        mine = [r for r in runs if r["command"] == name]
        ratios = [r["against_trainer"] for r in mine if r["against_trainer"] is not None]
        lines.append(f"| {name} | {len(mine)} | {statistics.mean(r['seconds'] for r in mine):.0f} s | "
                     f"{f'{statistics.mean(ratios):.2f}x' if ratios else '1.00x'} | "
                     f"{max(r['peak_mb'] for r in mine):,} MB |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
