"""Does augmentation earn its place? Augment off / on / on with protected words, over seeds.

  python scripts/bench_augment.py [--data data/benchmarks/banking77-lt] [--out runs/bench-augment]
      [--seeds 0 1 2 3 4] [--protect-words 3] [--jobs 1] [--set KEY=VALUE ...] [--words-only]

Each recipe and seed is one ``intentbal train --train DATA/train.csv --validation
DATA/validation.csv --eval DATA/validation.csv`` with ``--set`` overrides (nothing is held out
of train, so there is no refit), scored on validation by scripts/score.py with the training
counts: macro recall and tail recall (the third of the intents with the fewest training rows).
Validation chooses tau as well, as in scripts/benchmark.py's validation column: these numbers
are for choosing between the recipes, not for reporting quality (that is test's job).

Recipes: ``off`` (augment.enabled=false), ``on`` (augment.enabled=true, protect_words=0) and
``protect`` (augment.enabled=true, protect_words=--protect-words). Extra ``--set`` values apply to
all three (a smoke test: ``--seeds 0 --set train.epochs=0.05``). ``--jobs N`` trains N runs at
once, each with OMP_NUM_THREADS=2 unless set (one H200 and 16 cores: six at once). Prints a JSON
line per run and then the table (mean ± sd over seeds); ``OUT/results.json`` keeps every score.

``--words-only`` trains nothing: it augments DATA/train.csv as ``train`` would (the default
augment settings, the target from the whole file) without and with protection, and prints, over
the seeds, the share of synthetic rows that keep every protected word of their source (the top
--protect-words of its intent, counted whether or not they were protected), the share that lose
their intent's top chi² word (of the rows whose source has it, and of all), and the share that fell back to duplicates.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCORER = ROOT / "scripts" / "score.py"
METRICS = ("macro_recall", "tail_recall")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "benchmarks" / "banking77-lt",
                    help="folder with train.csv and validation.csv")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-augment"), help="folder for the runs and scores")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--protect-words", type=int, default=3, help="augment.protect_words of the protect recipe")
    ap.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every run (repeatable)")
    ap.add_argument("--words-only", action="store_true", help="measure word survival; train nothing")
    a = ap.parse_args()
    if a.words_only:
        print(word_survival(a.data / "train.csv", seeds=a.seeds, top_k=a.protect_words))
        return

    recipes = {
        "off": ["augment.enabled=false"],
        "on": ["augment.enabled=true", "augment.protect_words=0"],
        "protect": ["augment.enabled=true", f"augment.protect_words={a.protect_words}"],
    }
    results = run_recipes(a, recipes)
    for seed in a.seeds:
        if synthetic_rows(a.out / "on" / f"seed{seed}") == synthetic_rows(a.out / "protect" / f"seed{seed}"):
            print(f"warning: seed {seed}: 'on' and 'protect' trained on the same synthetic rows, so "
                  "augment.protect_words did not reach the augmenters", file=sys.stderr)
    print(table(results))


def run_recipes(a: argparse.Namespace, recipes: dict[str, list[str]], data: dict[str, Path] | None = None
                ) -> dict[str, dict[str, dict[str, float]]]:
    """Every recipe (name to its overrides) at every seed of --seeds, --jobs at a time, each on its
    ``data`` folder (default --data); the scores by recipe and seed, also written to OUT/results.json."""
    runs = [(name, seed) for seed in a.seeds for name in recipes]
    folders = data or {}
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        scores = list(pool.map(lambda run: train_and_score(a, run[0], recipes[run[0]], run[1],
                                                           folders.get(run[0])), runs))
    results: dict[str, dict[str, dict[str, float]]] = {}
    for (name, seed), scored in zip(runs, scores):
        results.setdefault(name, {})[str(seed)] = scored
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return results


def train_and_score(a: argparse.Namespace, name: str, overrides: list[str], seed: int, data: Path | None = None
                    ) -> dict[str, float]:
    """Train one recipe and seed with the CLI on ``data`` (default --data), then score its validation
    predictions."""
    data = data or a.data
    folder = a.out / name / f"seed{seed}"
    sets = [*overrides, f"seed={seed}", "evaluate.plots=false", *a.sets]
    cmd = [sys.executable, "-m", "intentbal.cli", "train", "--train", str(data / "train.csv"),
           "--validation", str(data / "validation.csv"), "--eval", str(data / "validation.csv"),
           "--output", str(folder)]
    for value in sets:
        cmd += ["--set", value]
    env = {"OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1", **os.environ}
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    out = subprocess.run([sys.executable, str(SCORER), str(folder / "predictions.csv"), "--train",
                          str(data / "train.csv")], check=True, capture_output=True, text=True)
    scored = {m: json.loads(out.stdout)[m] for m in METRICS}
    print(json.dumps({"recipe": name, "seed": seed, **scored}), flush=True)
    return scored


def word_survival(train: Path, *, seeds: list[int], top_k: int) -> str:
    """Markdown: per protect_words setting, how synthetic rows treat their source's protected words."""
    from collections import Counter

    from intentbal.config import AugmentConfig
    from intentbal.data.keywords import discriminative_words, words_in
    from intentbal.data.readers import load_intents
    from intentbal.rebalance.augmentation import DUPLICATE, augment_rare, resolve_target

    data = load_intents(train)
    config = AugmentConfig()
    target = resolve_target(dict(Counter(data.intents)), target_count=config.target_count,
                            target_fraction=config.target_fraction)
    ranked = discriminative_words(data.texts, data.intents, top_k=top_k)

    def kept(source: str, text: str, words: list[str]) -> bool:
        before, after = Counter(words_in(source)), Counter(words_in(text))
        return all(after[w] >= before[w] for w in words)

    lines = [f"| protect_words | synthetic rows | keep all top-{top_k} words | lose the top word (source has it) "
             "| of all rows | duplicates |", "| --- | --- | --- | --- | --- | --- |"]
    for k in (0, top_k):
        shares: dict[str, list[float]] = {"keep": [], "lose": [], "lose_all": [], "dup": []}
        for seed in seeds:
            rows = augment_rare(data, target=target, augmenters=config.augmenters, seed=seed,
                                max_attempts=config.max_attempts, protect_words=k).synthetic
            holding = [s for s in rows if ranked[s.intent][:1] and ranked[s.intent][0] in words_in(s.source_text)]
            shares["keep"].append(sum(kept(s.source_text, s.text, ranked[s.intent]) for s in rows) / len(rows))
            shares["lose"].append(sum(not kept(s.source_text, s.text, ranked[s.intent][:1]) for s in holding)
                                  / len(holding))
            shares["lose_all"].append(shares["lose"][-1] * len(holding) / len(rows))
            shares["dup"].append(sum(s.augmenter == DUPLICATE for s in rows) / len(rows))
        cells = [f"{statistics.mean(v):.3f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.3f}"
                 for v in shares.values()]
        lines.append(f"| {k} | {len(rows)} | {' | '.join(cells)} |")
    return "\n".join(lines)


def synthetic_rows(folder: Path) -> str:
    path = folder / "augmentation.jsonl"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown: one row per recipe, each metric as mean ± sd over its seeds."""
    lines = ["| recipe | seeds | validation macro recall | validation tail recall |", "| --- | --- | --- | --- |"]
    for name, by_seed in results.items():
        cells = []
        for metric in METRICS:
            values = [s[metric] for s in by_seed.values()]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {sd:.3f}")
        lines.append(f"| {name} | {len(by_seed)} | {' | '.join(cells)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
