"""Wall time and validation quality of training recipes, each run through ``intentbal train``.

  python scripts/bench_cpu_recipe.py --out runs/cpu-recipe --seeds 0 1 \
      --candidate "today's default:train.trainable_layers=null,train.epochs=20" \
      --candidate "top 2 layers, 10 epochs:train.trainable_layers=2,train.epochs=10" \
      [--data data/benchmarks/banking77-lt] [--set train.refit=off] [--write table.md]

Each candidate and seed runs, one after another in this invocation, the command a user runs,
``intentbal train --train DATA/train.csv --validation DATA/validation.csv`` with the candidate's
overrides (and every ``--set``) as ``--set`` options, after ``train.refit=train`` (so the
shipped model never trains on ``validation.csv``), and is timed from start to exit. Then
``intentbal evaluate`` scores the shipped model on ``validation.csv`` (tau was chosen on it too,
alike for every candidate). The hold-out scores are those of the run's own ``report.json``: the
model trained without the eval hold-out. The test split is never read. ``uptime``'s load averages
are recorded before and after each run, since a shared machine slows a run down, and so is the
CPU time the run took (user and system).

With ``--eval-on-validation`` (a cheaper screening) ``validation.csv`` is also passed as
``--eval``: nothing is held out of ``train.csv``, so there is no refit, one fit on every training
row (the rows a shipped model trains on), scored on validation by the run's own report, as
``scripts/benchmark.py`` scores its validation column; there are no hold-out scores then.

``OUT/results.jsonl`` gets one line per run (``--skip-done`` reuses finished ones) and
``OUT/table.md`` (or ``--write``) the table: mean ± sd over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    done = _read_results(results_path) if args.skip_done else {}
    results = []
    for name, overrides in [_candidate(c) for c in args.candidate]:
        for seed in args.seeds:
            key = f"{name}|{seed}"
            if key not in done:
                done[key] = run_one(args.data, out, name, [*args.set, *overrides], seed=seed,
                                    eval_on_validation=args.eval_on_validation)
                with open(results_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(done[key]) + "\n")
            results.append(done[key])
            print(_line(done[key]), flush=True)
    table = markdown_table(results)
    (args.write or out / "table.md").write_text(table, encoding="utf-8")
    print(table)
    return 0


def run_one(
    data: Path, out: Path, name: str, overrides: list[str], *, seed: int, eval_on_validation: bool = False,
) -> dict[str, object]:
    """Train one candidate with one seed through the CLI, then score its model on validation."""
    folder = out / _slug(name) / f"seed{seed}"
    shutil.rmtree(folder, ignore_errors=True)
    sets = [a for o in ["train.refit=train", *overrides, f"seed={seed}"] for a in ("--set", o)]
    load_before, cpu_before = _load(), _child_cpu()
    start = time.perf_counter()
    screening = ["--eval", data / "validation.csv"] if eval_on_validation else []
    _cli("train", "--train", data / "train.csv", "--validation", data / "validation.csv", *screening,
         "--output", folder / "run", *sets)
    wall = time.perf_counter() - start
    load_after, cpu = _load(), _child_cpu() - cpu_before
    report = json.loads((folder / "run" / "report.json").read_text(encoding="utf-8"))["summary"]
    if not eval_on_validation:
        _cli("evaluate", "--model", folder / "run" / "model", "--data", data / "validation.csv",
             "--output", folder / "validation", "--set", "evaluate.plots=false")
    validation = report if eval_on_validation else json.loads(
        (folder / "validation" / "report.json").read_text(encoding="utf-8"))["summary"]
    held_out = {} if eval_on_validation else report
    metrics = json.loads((folder / "run" / "train_metrics.json").read_text(encoding="utf-8"))
    adjustment = json.loads((folder / "run" / "model" / "intentbal.json").read_text(encoding="utf-8"))
    return {
        "candidate": name, "seed": seed, "overrides": overrides, "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "train_seconds": metrics["train_seconds"] + metrics.get("evaluated_fit", {}).get("train_seconds", 0.0),
        "refit": metrics["refit"], "load_before": load_before, "load_after": load_after,
        "validation_macro_recall": validation["macro_recall"], "validation_accuracy": validation["accuracy"],
        "holdout_macro_recall": held_out.get("macro_recall"), "holdout_accuracy": held_out.get("accuracy"),
        "tau": adjustment["logit_adjustment"]["tau"],
    }


def markdown_table(results: list[dict[str, object]]) -> str:
    """One row per candidate: its seeds, wall time and scores, mean ± sd where there are two or more."""
    header = ["candidate", "seeds", "wall time of `train` (s)", "CPU time of `train` (s)", "validation macro recall",
              "validation accuracy", "hold-out macro recall", "hold-out accuracy", "load (1-min avg) before-after"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name in dict.fromkeys(str(r["candidate"]) for r in results):
        rows = [r for r in results if r["candidate"] == name]
        loads = [float(r[k][0]) for r in rows for k in ("load_before", "load_after")]  # type: ignore[index]
        cells = [name, ", ".join(str(r["seed"]) for r in rows), _spread(rows, "wall_seconds", "{:.0f}"),
                 _spread(rows, "cpu_seconds", "{:.0f}"),
                 _spread(rows, "validation_macro_recall"), _spread(rows, "validation_accuracy"),
                 _spread(rows, "holdout_macro_recall"), _spread(rows, "holdout_accuracy"),
                 f"{min(loads):.2f}-{max(loads):.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _spread(rows: list[dict[str, object]], key: str, fmt: str = "{:.3f}") -> str:
    values = [float(r[key]) for r in rows if r.get(key) is not None]  # type: ignore[arg-type]
    if not values:
        return "-"
    if len(values) < 2:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"


def _cli(*args: object) -> None:
    command = [sys.executable, "-m", "intentbal.cli", *map(str, args)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)


def _child_cpu() -> float:
    """CPU seconds (user and system) of the finished child processes: less sensitive to a shared
    machine than wall time, though not immune (contention also costs CPU time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load() -> list[float]:
    """The 1-, 5- and 15-minute load averages, as ``uptime`` shows them."""
    return [round(x, 2) for x in os.getloadavg()]


def _candidate(text: str) -> tuple[str, list[str]]:
    name, _, overrides = text.partition(":")
    return name.strip(), [o.strip() for o in overrides.split(",") if o.strip()]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def _read_results(path: Path) -> dict[str, dict[str, object]]:
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {f"{r['candidate']}|{r['seed']}": r for r in rows}


def _line(result: dict[str, object]) -> str:
    return (f"{result['candidate']} seed {result['seed']}: {result['wall_seconds']} s, validation macro recall "
            f"{float(result['validation_macro_recall']):.3f}, load {result['load_before']} -> {result['load_after']}")  # type: ignore[arg-type]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "benchmarks" / "banking77-lt",
                        help="folder with train.csv and validation.csv")
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs and the table")
    parser.add_argument("--candidate", action="append", required=True,
                        help="NAME:KEY=VALUE,KEY=VALUE (repeatable; run in the order given)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for every candidate, e.g. train.refit=off")
    parser.add_argument("--eval-on-validation", action="store_true",
                        help="screening: validation.csv is also the eval data, so one fit on every training row")
    parser.add_argument("--skip-done", action="store_true", help="reuse the runs already in OUT/results.jsonl")
    parser.add_argument("--write", type=Path, help="write the table here instead of OUT/table.md")
    return parser


if __name__ == "__main__":
    sys.exit(main())
