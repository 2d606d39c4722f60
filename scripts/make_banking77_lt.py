"""Build BANKING77-LT, the long-tailed BANKING77 shipped in data/benchmarks/banking77-lt/.

  python scripts/make_banking77_lt.py --source DIR [--out data/benchmarks/banking77-lt] [--seed 0]
  python scripts/make_banking77_lt.py --hub [--out data/benchmarks/banking77-lt]

--source DIR is a local copy of BANKING77 (Casanueva et al. 2020) with its official
``train.csv`` and ``test.csv`` (columns ``text,category``, as in PolyAI's repository);
--hub reads ``PolyAI/banking77`` from the Hugging Face Hub instead (needs the network and
``pip install datasets``).

The recipe, with a seeded ``random.Random(seed)`` drawing every step in this order:

1. the intents, sorted by name, are shuffled; intent i (0-based, of C) keeps
   ``max(n_min, round(n_max * ratio ** (-i / (C - 1))))`` training examples (100 down to 2 with
   the defaults), at most its examples minus ``val_per_intent``;
2. for each intent in that order, its training examples (in file order) are shuffled: the first
   n go to ``train.csv``, the next ``val_per_intent`` to ``validation.csv``;
3. ``train.csv`` is shuffled.

``unlabeled.csv`` holds every other training text (file order, then shuffled by a fresh
``random.Random(seed)``), without its intent; ``test.csv`` is the official test split unchanged;
``train_counts.json`` maps each intent to its training count (in the shuffled intent order).
CSV files have columns ``text,intent`` (``text`` only for unlabeled.csv) and ``\\r\\n`` line ends.
With the defaults and the official files the output is byte for byte the shipped folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "data" / "benchmarks" / "banking77-lt"
Row = tuple[str, str]  # (text, intent)


@dataclass(frozen=True)
class LongTail:
    """The splits drawn from BANKING77's training rows."""

    train: list[Row]
    validation: list[Row]
    unlabeled: list[str]
    counts: dict[str, int]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--source", type=Path, help="folder with BANKING77's train.csv and test.csv")
    source.add_argument("--hub", action="store_true", help="read PolyAI/banking77 from the Hugging Face Hub")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ratio", type=float, default=50.0, help="largest over smallest training count")
    ap.add_argument("--n-max", type=int, default=100)
    ap.add_argument("--n-min", type=int, default=2)
    ap.add_argument("--val-per-intent", type=int, default=5)
    a = ap.parse_args(argv)

    try:
        train_rows, test_rows = banking77_from_hub() if a.hub else banking77_from_folder(a.source)
    except (OSError, ValueError) as exc:
        print(f"make_banking77_lt: error: {exc}", file=sys.stderr)
        return 2
    longtail = build_longtail(train_rows, seed=a.seed, ratio=a.ratio, n_max=a.n_max, n_min=a.n_min,
                              val_per_intent=a.val_per_intent)
    write_longtail(a.out, longtail, test_rows)
    counts = longtail.counts.values()
    print(f"{len(longtail.counts)} intents: train {len(longtail.train)} ({max(counts)} down to {min(counts)} "
          f"per intent), validation {len(longtail.validation)}, unlabeled {len(longtail.unlabeled)}, "
          f"test {len(test_rows)} -> {a.out}")
    return 0


def banking77_from_folder(folder: Path) -> tuple[list[Row], list[Row]]:
    """(train, test) rows of a local copy of BANKING77: ``folder/train.csv`` and ``folder/test.csv``."""
    return read_banking77_csv(folder / "train.csv"), read_banking77_csv(folder / "test.csv")


def read_banking77_csv(path: Path) -> list[Row]:
    """Rows of one official BANKING77 CSV (``text,category``), in file order."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"text", "category"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: expected the columns text,category of BANKING77, found "
                             f"{','.join(reader.fieldnames or [])}; give the folder of the official CSV files")
        return [(row["text"], row["category"]) for row in reader]


def banking77_from_hub() -> tuple[list[Row], list[Row]]:
    """(train, test) rows of ``PolyAI/banking77`` on the Hugging Face Hub, integer labels turned
    into their names. Needs the network and ``datasets``; not run by the tests."""
    try:
        from datasets import load_dataset
    except ImportError as exc:
        raise ValueError("--hub needs the datasets package, found it missing; pip install datasets") from exc
    dataset = load_dataset("PolyAI/banking77")
    splits = []
    for name in ("train", "test"):
        split = dataset[name]
        names = split.features["label"].names
        splits.append([(text, names[label]) for text, label in zip(split["text"], split["label"])])
    return splits[0], splits[1]


def build_longtail(rows: list[Row], *, seed: int = 0, ratio: float = 50.0, n_max: int = 100, n_min: int = 2,
                   val_per_intent: int = 5) -> LongTail:
    """The long-tailed train, validation and unlabeled splits of ``rows`` (see the module docstring)."""
    rng = random.Random(seed)
    by_intent: dict[str, list[int]] = {}
    for index, (_, intent) in enumerate(rows):
        by_intent.setdefault(intent, []).append(index)
    intents = sorted(by_intent)
    rng.shuffle(intents)
    last = max(1, len(intents) - 1)  # one intent alone keeps n_max
    train: list[int] = []
    validation: list[int] = []
    counts: dict[str, int] = {}
    for i, intent in enumerate(intents):
        pool = list(by_intent[intent])
        rng.shuffle(pool)
        n = min(max(n_min, round(n_max * ratio ** (-i / last))), len(pool) - val_per_intent)
        counts[intent] = n
        train += pool[:n]
        validation += pool[n:n + val_per_intent]
    rng.shuffle(train)
    used = set(train) | set(validation)
    unlabeled = [rows[i][0] for i in range(len(rows)) if i not in used]
    random.Random(seed).shuffle(unlabeled)
    return LongTail(train=[rows[i] for i in train], validation=[rows[i] for i in validation],
                    unlabeled=unlabeled, counts=counts)


def write_longtail(out: Path, longtail: LongTail, test_rows: list[Row]) -> None:
    """Write the five files of the benchmark into ``out`` (each replaced atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "train.csv", ["text", "intent"], longtail.train)
    _write_csv(out / "validation.csv", ["text", "intent"], longtail.validation)
    _write_csv(out / "test.csv", ["text", "intent"], test_rows)
    _write_csv(out / "unlabeled.csv", ["text"], [(text,) for text in longtail.unlabeled])
    _write_text(out / "train_counts.json", json.dumps(longtail.counts, indent=1) + "\n")


def _write_csv(path: Path, header: list[str], rows: Sequence[tuple[str, ...]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)  # the csv module's own \r\n line ends, as in the shipped files
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
