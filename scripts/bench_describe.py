"""Do intent names earn their place? The recipe without names against names read as words, and an
opaque-id control.

  python scripts/bench_describe.py [--data data/benchmarks/banking77-lt] [--out runs/bench-describe]
      [--seeds 0 1 2 3 4] [--weight 2] [--rows 0.5] [--recipes ...] [--jobs 1] [--set KEY=VALUE ...]

Each recipe and seed is one ``intentbal train --train DATA/train.csv --validation
DATA/validation.csv --eval DATA/validation.csv`` with ``--set`` overrides (nothing is held out
of train, so there is no refit), scored on validation by scripts/score.py with the training
counts: macro recall and tail recall (the third of the intents with the fewest training rows).
Validation chooses tau as well, as in scripts/benchmark.py's validation column: these numbers
are for choosing between the recipes, not for reporting quality (that is test's job).

BANKING77-LT has no description file, so its intent names read as words
(``train.intent_names=auto``: ``card_arrival`` -> "card arrival") are what is measured:

- ``default``: today's recipe with intent names off (``train.intent_names=off``; the default reads
  them, with weight 1 and rows 1);
- ``names-init``: each starting prototype counts its name's embedding as --weight examples
  (``train.description_weight``);
- ``names-rows``: each name trains as one row of its intent weighing --rows (``train.description_rows``);
- ``names-both``: both;
- ``ids-control``: ``names-both`` on a copy of the data whose intents are renamed to opaque ids
  (``intent_000`` ... in the order of the names, so the tail and its ties are the same intents):
  ids are not words, so it must match ``default`` (names off) up to arithmetic noise.

Extra ``--set`` values apply to every run (a smoke test: ``--seeds 0 --set train.epochs=0.05``).
``--jobs N`` trains N runs at once, each with OMP_NUM_THREADS=2 unless set (one H200 and 16
cores: six at once). Prints a JSON line per run and then the table (mean ± sd over seeds);
``OUT/results.json`` keeps every score.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from bench_augment import run_recipes, table  # the same runs, measures and table as the augmentation benchmark

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ("default", "names-init", "names-rows", "names-both", "ids-control")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "benchmarks" / "banking77-lt",
                    help="folder with train.csv and validation.csv")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-describe"), help="folder for the runs and scores")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--weight", type=float, default=2.0, help="train.description_weight of the names recipes")
    ap.add_argument("--rows", type=float, default=0.5, help="train.description_rows of the names recipes")
    ap.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    ap.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every run (repeatable)")
    a = ap.parse_args()

    init, rows = f"train.description_weight={a.weight:g}", f"train.description_rows={a.rows:g}"
    recipes = {
        "default": ["train.intent_names=off"],
        "names-init": ["train.intent_names=auto", init],
        "names-rows": ["train.intent_names=auto", rows],
        "names-both": ["train.intent_names=auto", init, rows],
        "ids-control": ["train.intent_names=auto", init, rows],
    }
    data = {name: a.data for name in recipes}
    if "ids-control" in a.recipes:
        data["ids-control"] = opaque_copy(a.data, a.out / "ids-data")
    results = run_recipes(a, {name: recipes[name] for name in a.recipes}, data)
    print(table(results))


def opaque_copy(data: Path, folder: Path) -> Path:
    """DATA's train.csv and validation.csv in ``folder`` with every intent renamed to ``intent_NNN``
    (numbered in the order of the names, so sorting and tie-breaking by name are unchanged)."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {name: read_rows(data / name) for name in ("train.csv", "validation.csv")}
    intents = sorted({row["intent"] for rows in tables.values() for row in rows})
    ids = {intent: f"intent_{n:03d}" for n, intent in enumerate(intents)}
    for name, rows in tables.items():
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({**row, "intent": ids[row["intent"]]} for row in rows)
    return folder


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


if __name__ == "__main__":
    main()
