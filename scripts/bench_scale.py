"""Scale check: the user path on a synthetic long tail of 2,000 intents and 100,000 rows.

  python scripts/bench_scale.py [--intents 2000] [--rows 100000] [--eval-per-intent 10]
                                [--epochs 0.05] [--model PATH] [--set KEY=VALUE ...]
                                [--out runs/bench-scale] [--write BENCHMARKS.md]

Generates a seeded synthetic dataset offline (log-normal counts, 2 to about 1,000 rows per intent;
texts built from per-intent pseudo-words, shared filler words and a few generic texts that
appear under several intents), writes it to OUT/data/, then runs the commands a user would,
each in its own process: `intentbal profile`, `intentbal train` (a fraction of an epoch, with
the eval set, so it evaluates too) and `intentbal evaluate` with the HTML report. For each
phase it records wall time, the peak resident memory of the process (`os.wait4`), the lines it
printed and the longest of them; then the sizes of the report files. Prints JSON, writes it to
OUT/result.json and, with --write, replaces this script's section of the Markdown file.
The default model is the embedded all-MiniLM-L6-v2; --model takes any local model folder.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import platform
import random
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from statistics import NormalDist

from bench_speed import cpu_name  # the same machine description as the speed benchmark

ROOT = Path(__file__).resolve().parent.parent
SYLLABLES = ["ka", "lo", "mi", "te", "ru", "sa", "po", "ne", "vi", "da", "qu", "zo", "fe", "bi", "xu", "ga",
             "hi", "ju", "wa", "yo", "tra", "ble", "sno", "pri", "dre", "glo", "cru", "fla"]
FILLER = ["please", "now", "today", "again", "quickly", "for me", "right away", "if possible", "thanks", "asap"]
TEMPLATES = ["i want to {a} my {b}", "how do i {a} the {b}", "can you {a} {b} {f}", "{b} {a} problem",
             "help with {a} and {b}", "need to {a} a {b} {f}", "why can't i {a} my {b}", "{a} {b}",
             "is it possible to {a} {b}", "my {b} will not {a}", "{f} {a} the {b}", "what about {b} {a}"]
GENERIC = ["help", "hello", "i have a question", "not working", "can you help me", "hi there", "what now",
           "it does not work", "please help", "urgent"]
GENERIC_SHARE = 0.005  # of training rows: generic texts drawn under several intents, as in real logs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--intents", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=100_000, help="training rows")
    ap.add_argument("--eval-per-intent", type=int, default=10)
    ap.add_argument("--epochs", type=float, default=0.05, help="train.epochs (a fraction of an epoch is fine)")
    ap.add_argument("--model", type=Path, help="model folder (default: the embedded all-MiniLM-L6-v2)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more overrides for train")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-scale", help="folder for data and runs")
    ap.add_argument("--write", type=Path, help="Markdown file whose scale section is replaced")
    a = ap.parse_args()
    if a.rows < 2 * a.intents:
        ap.error(f"--rows must be at least 2 per intent ({2 * a.intents}), found {a.rows}")

    a.out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    start = time.perf_counter()
    train, evaluation = generate(a.intents, a.rows, a.eval_per_intent, seed=a.seed)
    data = a.out / "data"
    data.mkdir(exist_ok=True)
    write_rows(data / "train.csv", train)
    write_rows(data / "eval.csv", evaluation)
    phases = {"generate": {"seconds": round(time.perf_counter() - start, 1)}}

    sets = [f"train.epochs={a.epochs:g}", *a.set] + ([f"model.name_or_path={a.model}"] if a.model else [])
    overrides = [x for s in sets for x in ("--set", s)]
    run, report = a.out / "run", a.out / "eval"
    commands = {
        "profile": ["profile", data / "train.csv", "--eval", data / "eval.csv", "--output", a.out / "profile.json"],
        "train": ["train", "--train", data / "train.csv", "--eval", data / "eval.csv", "--output", run, *overrides],
        "evaluate": ["evaluate", "--model", run / "model", "--data", data / "eval.csv", "--output", report,
                     *[x for s in a.set for x in ("--set", s)]],
    }
    for name, args in commands.items():
        phases[name] = run_phase(name, args, a.out / f"{name}.log")
        if phases[name]["exit"] != 0:
            break
    result = {
        "intents": a.intents, "train_rows": len(train), "eval_rows": len(evaluation), "epochs": a.epochs,
        "model": str(a.model) if a.model else "all-MiniLM-L6-v2 (embedded)",
        "counts": count_shape(train), "phases": phases, "files": file_sizes(run, report),
        "machine": machine(), "load_average": {"before": [round(x, 2) for x in load_before],
                                               "after": [round(x, 2) for x in os.getloadavg()]},
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python scripts/bench_scale.py " + " ".join(sys.argv[1:]),
    }
    if (report / "report.json").is_file():
        summary = json.loads((report / "report.json").read_text(encoding="utf-8"))["summary"]
        result["quality"] = {k: summary[k] for k in ("accuracy", "macro_recall", "tail_recall", "below_threshold")}
    (a.out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    failed = [n for n, p in phases.items() if p.get("exit", 0) != 0]
    if failed:
        sys.exit(f"bench_scale: phase {failed[0]} failed; see {a.out / (failed[0] + '.log')}")
    if a.write:
        write_section(a.write, result)


def long_tail_counts(intents: int, rows: int, *, minimum: int = 2, maximum: int = 1000,
                     spread: float = 1.35) -> list[int]:
    """Per-intent counts, largest first, summing to ``rows``: log-normal quantiles (``spread``
    is the standard deviation of the log count) clipped to ``[minimum, maximum]``, the median
    found by bisection, the rounding remainder given to (or taken from) the head."""
    quantiles = [NormalDist().inv_cdf(1 - (r + 0.5) / intents) for r in range(intents)]

    def counts(mu: float) -> list[int]:
        return [min(maximum, max(minimum, round(math.exp(mu + spread * z)))) for z in quantiles]

    lo, hi = math.log(minimum), math.log(maximum)
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(counts(mid)) < rows else (lo, mid)
    out = counts(lo)
    step = 1 if rows > sum(out) else -1
    for i in range(abs(rows - sum(out))):
        out[i % intents] += step
    return out


def generate(intents: int, rows: int, eval_per_intent: int, *, seed: int) -> tuple[list[tuple[str, str]], ...]:
    """Seeded training and eval rows ``(text, intent)``; eval has ``eval_per_intent`` per intent."""
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < 4 * intents:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))))
    pool = sorted(words)
    rng.shuffle(pool)
    names = [f"intent_{i:04d}_{pool[i]}" for i in range(intents)]
    # each intent has three own words and one borrowed from another intent: some confusion is possible
    vocab = {n: [pool[i], pool[intents + i], pool[2 * intents + i], pool[3 * intents + rng.randrange(intents)]]
             for i, n in enumerate(names)}
    order = names[:]
    rng.shuffle(order)  # which intents are frequent is unrelated to their names

    def text(intent: str) -> str:
        a, b = rng.sample(vocab[intent], 2)
        tail = f" {rng.choice(FILLER)}" if rng.random() < 0.5 else ""
        return rng.choice(TEMPLATES).format(a=a, b=b, f=rng.choice(FILLER)) + tail

    train = [(text(n), n) for n, c in zip(order, long_tail_counts(intents, rows)) for _ in range(c)]
    for i in rng.sample(range(len(train)), int(GENERIC_SHARE * len(train))):
        train[i] = (rng.choice(GENERIC), train[i][1])
    rng.shuffle(train)
    evaluation = [(text(n), n) for n in names for _ in range(eval_per_intent)]
    return train, evaluation


def write_rows(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "intent"])
        writer.writerows(rows)


def count_shape(rows: list[tuple[str, str]]) -> dict[str, int]:
    counts = sorted(Counter(intent for _, intent in rows).values())
    return {"min": counts[0], "median": counts[len(counts) // 2], "max": counts[-1],
            "intents_up_to_10": sum(c <= 10 for c in counts)}


def run_phase(name: str, args: list, log: Path) -> dict:
    """Run ``intentbal ARGS`` in a child process: wall time, its peak RSS, and what it printed."""
    cmd = [sys.executable, "-m", "intentbal.cli", *map(str, args)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=f, env=env, cwd=ROOT)
        assert proc.stdout is not None  # stdout=PIPE
        out = proc.stdout.read().decode("utf-8", "replace")
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not every child's maximum
        proc.returncode = os.waitstatus_to_exitcode(status)
        f.write(out)
    seconds = time.perf_counter() - start
    lines = out.splitlines()
    print(f"{name}: exit {proc.returncode}, {seconds:.1f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MB",
          file=sys.stderr)
    return {"exit": proc.returncode, "seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "stdout_lines": len(lines), "longest_line": max(map(len, lines), default=0)}


def file_sizes(run: Path, report: Path) -> dict[str, float]:
    """Sizes in kB of the report files the user opens or parses."""
    out = {}
    for folder, tag in ((run, "train"), (report, "evaluate")):
        for name in ("report.html", "report.json", "report.md", "fallback_curve.json", "predictions.csv",
                     "plots/confusions.png", "plots/recall_vs_count.png"):
            path = folder / name
            if path.is_file():
                out[f"{tag}/{name}"] = round(path.stat().st_size / 1024, 1)
    return out


def machine() -> dict[str, object]:
    cpu = cpu_name()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": os.cpu_count(), "cpu": cpu, "ram_gb": round(ram, 1), "python": platform.python_version()}


def write_section(path: Path, r: dict) -> None:
    """Replace (or append) the block between the scale markers in ``path``."""
    m, p, f = r["machine"], r["phases"], r["files"]
    rows = "".join(f"| {name} | {v['seconds']:.1f} | {v.get('peak_rss_mb', '')} | {v.get('stdout_lines', '')} | "
                   f"{v.get('longest_line', '')} |\n" for name, v in p.items())
    sizes = ", ".join(f"`{k}` {v / 1024:.2f} MB" if v >= 1024 else f"`{k}` {v:.0f} kB" for k, v in f.items())
    q = r.get("quality", {})
    body = f"""<!-- scale:start -->
Measured {r['date']} on {m['cores']} cores ({m['cpu']}), {m['ram_gb']} GB RAM, Python {m['python']};
load average {r['load_average']['before'][0]:.1f} before and {r['load_average']['after'][0]:.1f} after (the machine
is shared: timings are indicative); `{r['command']}`. {r['intents']} intents, {r['train_rows']} training rows
(per intent: min {r['counts']['min']}, median {r['counts']['median']}, max {r['counts']['max']};
{r['counts']['intents_up_to_10']} intents with at most 10), {r['eval_rows']} eval rows, {r['epochs']:g} epochs of
{r['model']}.

| phase | seconds | peak RSS (MB) | lines printed | longest line (chars) |
| --- | --- | --- | --- | --- |
{rows}
Files: {sizes}.
{f"Quality after {r['epochs']:g} epochs (not a quality measure): accuracy {q['accuracy']:.3f}, macro recall "
 f"{q['macro_recall']:.3f}, tail recall {q['tail_recall']:.3f}." if q else ""}
<!-- scale:end -->"""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"<!-- scale:start -->.*?<!-- scale:end -->", re.S)
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else text.rstrip() + "\n\n" + body + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
