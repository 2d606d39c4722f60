"""Build CLINC150-LT, the long-tailed CLINC150 shipped in data/benchmarks/clinc150-lt/.

  python scripts/make_clinc150_lt.py --source FILE [--out data/benchmarks/clinc150-lt] [--seed 0]

--source FILE is a local copy of CLINC150's ``data_full.json`` (Larson et al. 2019): a JSON object
whose lists ``train``, ``val``, ``test`` and ``oos_test`` hold ``[text, intent]`` pairs (100, 20 and
30 in-scope examples per intent, and 1,000 out-of-scope ones of intent ``oos``).

The recipe, with a seeded ``random.Random(seed)`` drawing every step in this order:

1. the intents of ``train``, sorted by name, are shuffled; intent i (0-based, of C) keeps
   ``max(n_min, round(n_max * ratio ** (-i / (C - 1))))`` training examples (100 down to 2 with
   the defaults), at most its examples in ``train``;
2. for each intent in that order, its ``train`` examples (in file order) are shuffled and the first
   n go to ``train.csv``; then its ``val`` examples (in file order) are shuffled and the first
   ``val_per_intent`` go to ``validation.csv``;
3. ``train.csv`` is shuffled.

``unlabeled.csv`` holds every other ``train`` text (file order, then shuffled by a fresh
``random.Random(seed)``), without its intent; ``test.csv`` is the official in-scope ``test`` split
unchanged and ``oos_test.csv`` the official ``oos_test`` split unchanged (kept apart, for fallback
checks); ``train_counts.json`` maps each intent to its training count (in the shuffled intent order).
CSV files have columns ``text,intent`` (``text`` only for unlabeled.csv) and ``\\r\\n`` line ends.
With the defaults and the official file the output is byte for byte the shipped folder.
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
DEFAULT_OUT = ROOT / "data" / "benchmarks" / "clinc150-lt"
SPLITS = ("train", "val", "test", "oos_test")
OOS = "oos"
Row = tuple[str, str]  # (text, intent)


@dataclass(frozen=True)
class LongTail:
    """The splits drawn from CLINC150's ``train`` and ``val`` rows."""

    train: list[Row]
    validation: list[Row]
    unlabeled: list[str]
    counts: dict[str, int]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, required=True, help="CLINC150's data_full.json")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ratio", type=float, default=50.0, help="largest over smallest training count")
    ap.add_argument("--n-max", type=int, default=100)
    ap.add_argument("--n-min", type=int, default=2)
    ap.add_argument("--val-per-intent", type=int, default=5)
    a = ap.parse_args(argv)

    try:
        splits = read_clinc150(a.source, val_per_intent=a.val_per_intent)
    except (OSError, ValueError) as exc:
        print(f"make_clinc150_lt: error: {exc}", file=sys.stderr)
        return 2
    longtail = build_longtail(splits["train"], splits["val"], seed=a.seed, ratio=a.ratio, n_max=a.n_max,
                              n_min=a.n_min, val_per_intent=a.val_per_intent)
    write_longtail(a.out, longtail, splits["test"], splits["oos_test"])
    counts = longtail.counts.values()
    print(f"{len(longtail.counts)} intents: train {len(longtail.train)} ({max(counts)} down to {min(counts)} "
          f"per intent), validation {len(longtail.validation)}, unlabeled {len(longtail.unlabeled)}, "
          f"test {len(splits['test'])}, oos_test {len(splits['oos_test'])} -> {a.out}")
    return 0


def read_clinc150(path: Path, *, val_per_intent: int = 5) -> dict[str, list[Row]]:
    """The rows of ``train``, ``val``, ``test`` and ``oos_test`` in a CLINC150 JSON file, in file order.

    Raises ValueError unless each is a list of ``[text, intent]`` string pairs, the in-scope splits
    hold no ``oos`` rows and only intents of ``train``, ``oos_test`` holds only ``oos`` rows, and
    ``val`` has at least ``val_per_intent`` rows of each intent."""
    with open(path, encoding="utf-8") as f:
        try:
            doc = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc}); give CLINC150's data_full.json") from exc
    if not isinstance(doc, dict) or not set(SPLITS) <= set(doc):
        found = ",".join(map(str, doc)) if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{path}: expected CLINC150's splits {','.join(SPLITS)}, found {found or 'none'}; "
                         f"give CLINC150's data_full.json")
    splits: dict[str, list[Row]] = {}
    for name in SPLITS:
        rows = doc[name]
        if not isinstance(rows, list) or not all(
                isinstance(r, list) and len(r) == 2 and all(isinstance(v, str) for v in r) for r in rows):
            raise ValueError(f"{path}[{name}]: expected a list of [text, intent] string pairs")
        splits[name] = [(text, intent) for text, intent in rows]
    intents = {intent for _, intent in splits["train"]}
    if OOS in intents:
        raise ValueError(f"{path}[train]: expected in-scope rows only, found the intent {OOS}")
    for name in ("val", "test"):  # an oos row here is a stray too
        strays = sorted({intent for _, intent in splits[name]} - intents)
        if strays:
            raise ValueError(f"{path}[{name}]: expected the intents of train only, found {', '.join(strays[:3])}")
    if any(intent != OOS for _, intent in splits["oos_test"]):
        raise ValueError(f"{path}[oos_test]: expected only the intent {OOS}")
    per_intent = {i: 0 for i in intents}
    for _, intent in splits["val"]:
        per_intent[intent] += 1
    short = sorted(i for i, n in per_intent.items() if n < val_per_intent)
    if short:
        raise ValueError(f"{path}[val]: {len(short)} intents ({', '.join(short[:3])}) have fewer than "
                         f"{val_per_intent} rows, needed for validation.csv")
    return splits


def build_longtail(train_rows: list[Row], val_rows: list[Row], *, seed: int = 0, ratio: float = 50.0,
                   n_max: int = 100, n_min: int = 2, val_per_intent: int = 5) -> LongTail:
    """The long-tailed train, validation and unlabeled splits (see the module docstring); every
    intent of ``val_rows`` must be one of ``train_rows``."""
    rng = random.Random(seed)
    train_of = _indices_by_intent(train_rows)
    val_of = _indices_by_intent(val_rows)
    intents = sorted(train_of)
    rng.shuffle(intents)
    last = max(1, len(intents) - 1)  # one intent alone keeps n_max
    train: list[int] = []
    validation: list[int] = []
    counts: dict[str, int] = {}
    for i, intent in enumerate(intents):
        pool = list(train_of[intent])
        rng.shuffle(pool)
        n = min(max(n_min, round(n_max * ratio ** (-i / last))), len(pool))
        counts[intent] = n
        train += pool[:n]
        held = list(val_of.get(intent, []))
        rng.shuffle(held)
        validation += held[:val_per_intent]
    rng.shuffle(train)
    used = set(train)
    unlabeled = [train_rows[i][0] for i in range(len(train_rows)) if i not in used]
    random.Random(seed).shuffle(unlabeled)
    return LongTail(train=[train_rows[i] for i in train], validation=[val_rows[i] for i in validation],
                    unlabeled=unlabeled, counts=counts)


def _indices_by_intent(rows: list[Row]) -> dict[str, list[int]]:
    by_intent: dict[str, list[int]] = {}
    for index, (_, intent) in enumerate(rows):
        by_intent.setdefault(intent, []).append(index)
    return by_intent


def write_longtail(out: Path, longtail: LongTail, test_rows: list[Row], oos_rows: list[Row]) -> None:
    """Write the six files of the benchmark into ``out`` (each replaced atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "train.csv", ["text", "intent"], longtail.train)
    _write_csv(out / "validation.csv", ["text", "intent"], longtail.validation)
    _write_csv(out / "test.csv", ["text", "intent"], test_rows)
    _write_csv(out / "oos_test.csv", ["text", "intent"], oos_rows)
    _write_csv(out / "unlabeled.csv", ["text"], [(text,) for text in longtail.unlabeled])
    _write_text(out / "train_counts.json", json.dumps(longtail.counts, indent=1) + "\n")


def _write_csv(path: Path, header: list[str], rows: Sequence[tuple[str, ...]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)  # the csv module's own \r\n line ends, as in BANKING77-LT
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
