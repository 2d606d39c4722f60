"""What an unlabeled pool costs: the default command with and without ``--unlabeled``, side by side.

  python scripts/bench_pool.py [--data data/benchmarks/banking77-lt] [--sizes 1000 10000 100000]
      [--out runs/bench-pool] [--seed 0] [--set KEY=VALUE ...] [--write BENCHMARKS.md]

One after another on the same machine, each in a process of its own: ``intentbal train --train
DATA/train.csv --validation DATA/validation.csv`` (the default, with its refit), the same with
``--unlabeled DATA/unlabeled.csv`` (the dataset's real pool) and with pools of each of --sizes
rows. Those pools are for timing only: the real pool's texts first, then variants of them (one
word dropped, one word of the pool's vocabulary put in, seeded), every text distinct. Each run
(its output in ``OUT/NAME.log``) reports its wall time, its time over the run without a pool, the
rows the shipped model borrowed (``train_metrics.json``) and its peak resident memory. Extra
``--set`` values apply to every run (a smoke test: ``--set train.epochs=0.2``). Prints a JSON line
per run and the table; with --write the table replaces the block between
``<!-- pool-cost:start -->`` and ``<!-- pool-cost:end -->``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import re
import subprocess
import sys
import time
from pathlib import Path

from bench_speed import read_texts  # the text column of a CSV file, as the speed benchmark reads it

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- pool-cost:start -->", "<!-- pool-cost:end -->"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "benchmarks" / "banking77-lt",
                    help="folder with train.csv, validation.csv and unlabeled.csv")
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000], help="synthetic pool sizes")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-pool"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--write", type=Path, help="Markdown file whose pool-cost block is replaced")
    a = ap.parse_args()
    real = a.data / "unlabeled.csv"
    missing = [p.name for p in (a.data / "train.csv", a.data / "validation.csv", real) if not p.is_file()]
    if missing:
        raise SystemExit(f"bench_pool: error: --data {a.data}: expected train.csv, validation.csv and unlabeled.csv, "
                         f"found no {', '.join(missing)}; pass a folder like data/benchmarks/banking77-lt")
    a.out.mkdir(parents=True, exist_ok=True)
    texts = read_texts(real)
    pools: dict[str, tuple[Path | None, int]] = {"no pool": (None, 0), f"{a.data.name}'s pool": (real, len(texts))}
    for size in a.sizes:
        path = a.out / f"pool-{size}.csv"
        write_texts(path, synthetic_pool(texts, size, seed=a.seed))
        pools[f"{size:,} rows (synthetic)"] = (path, size)
    runs = []
    for name, (pool, rows) in pools.items():
        run = train(a, name, pool, rows=rows)
        runs.append(run)
        print(json.dumps(run), flush=True)
    table = markdown(runs, command=" ".join(["python", *sys.argv]))
    (a.out / "table.md").write_text(table, encoding="utf-8")
    print(table)
    if a.write:
        write_block(a.write, BEGIN, END, table, script="bench_pool")


def write_block(path: Path, begin: str, end: str, table: str, *, script: str) -> None:
    """Replace what stands between the markers ``begin`` and ``end`` in ``path`` with ``table``, in one rename."""
    text = path.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        raise SystemExit(f"{script}: error: {path}: expected the markers {begin} and {end}, found none; "
                         "add them where the table goes")
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    tmp = path.with_suffix(".tmp")  # a crash while writing leaves the file as it was
    tmp.write_text(pattern.sub(lambda _: f"{begin}\n{table}{end}", text), encoding="utf-8")
    tmp.replace(path)


def synthetic_pool(texts: list[str], size: int, *, seed: int) -> list[str]:
    """``size`` distinct texts: ``texts`` (distinct, in order), then seeded one-word variants of them."""
    rng = random.Random(seed)
    out = list(dict.fromkeys(texts))[:size]
    seen = set(out)
    vocabulary = sorted({w for t in texts for w in t.split()})
    while len(out) < size:
        words = rng.choice(texts).split()
        if len(words) > 1:
            del words[rng.randrange(len(words))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(vocabulary))
        text = " ".join(words)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def train(a: argparse.Namespace, name: str, pool: Path | None, *, rows: int) -> dict:
    """One ``intentbal train`` in a process of its own: wall time, rows borrowed, peak memory."""
    folder = a.out / slug(name)
    cmd = [sys.executable, "-m", "intentbal", "train", "--train", str(a.data / "train.csv"),
           "--validation", str(a.data / "validation.csv"), "--output", str(folder), "--quiet",
           "--set", f"seed={a.seed}"]
    if pool is not None:
        cmd += ["--unlabeled", str(pool)]
    for item in a.sets:
        cmd += ["--set", item]
    log = a.out / f"{folder.name}.log"
    ok, seconds, peak_mb = timed(cmd, log)
    if not ok:
        raise SystemExit(f"bench_pool: error: {name}: intentbal train failed; its log: {log}")
    metrics = json.loads((folder / "train_metrics.json").read_text(encoding="utf-8"))
    return {"pool": name, "pool_rows": rows,
            "borrowed": metrics.get("pseudo_rows", 0), "seconds": round(seconds, 1), "peak_mb": peak_mb}


def slug(name: str) -> str:
    """``name`` as a file name: lower case, every run of other characters one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def timed(cmd: list[str], log: Path, *, cwd: Path | None = None) -> tuple[bool, float, int]:
    """Run ``cmd`` offline in a process of its own, its output into ``log``: whether it succeeded,
    its wall time in seconds and its own peak resident memory in MB (not the largest of all children)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with log.open("w", encoding="utf-8") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    kib = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return os.waitstatus_to_exitcode(status) == 0, seconds, round(usage.ru_maxrss * kib / 2**20)


def markdown(runs: list[dict], *, command: str) -> str:
    base = runs[0]["seconds"]
    lines = [f"Measured {dt.date.today()} on {os.cpu_count()} CPU cores ({platform.machine()}), "
             f"Python {platform.python_version()}: `{command}`", "",
             "| pool | pool rows | rows borrowed (shipped model) | wall time of `train` | against no pool | "
             "peak memory |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        lines.append(f"| {r['pool']} | {r['pool_rows']:,} | {r['borrowed']:,} | {r['seconds']:.0f} s | "
                     f"{r['seconds'] / base:.2f}x | {r['peak_mb']:,} MB |")
    return "\n".join(lines) + "\n"


def write_texts(path: Path, texts: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        w.writerows([t] for t in texts)


if __name__ == "__main__":
    main()
