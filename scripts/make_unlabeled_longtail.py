"""A long-tailed subsample of BANKING77-LT's unlabeled pool, for measuring self-training.

  python scripts/make_unlabeled_longtail.py [--banking77 data/benchmarks/banking77] \
      [--lt data/benchmarks/banking77-lt] [--out data/benchmarks/banking77-lt/unlabeled_longtail.csv] [--seed 0]

``unlabeled.csv`` (the BANKING77 training texts outside the LT split) is roughly balanced across
intents, which real chat logs are not: the intents that are rare in training are rare in the logs
too. This keeps, of the pool texts of each intent, the share its intent has of the largest
intent's training count (``train_counts.json``): about all of the most frequent intent's and 2%
of the rarest's (at least 1). The intents come from the full BANKING77 ``train.csv``
(``python scripts/get_datasets.py --dataset banking77 ...``) and are used only to subsample: the
output holds the column ``text`` only, shuffled by ``random.Random(seed)``. Texts that BANKING77
gives two intents are left out.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LT = ROOT / "data" / "benchmarks" / "banking77-lt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--banking77", type=Path, default=ROOT / "data" / "benchmarks" / "banking77")
    ap.add_argument("--lt", type=Path, default=LT)
    ap.add_argument("--out", type=Path, default=LT / "unlabeled_longtail.csv")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if not (a.banking77 / "train.csv").is_file():
        raise SystemExit(f"expected the full BANKING77 at {a.banking77}/train.csv, found none; run "
                         "python scripts/get_datasets.py --dataset banking77 --hub (or --source DIR) first")
    intent_of = _intents(a.banking77 / "train.csv")
    counts = json.loads((a.lt / "train_counts.json").read_text(encoding="utf-8"))
    with open(a.lt / "unlabeled.csv", newline="", encoding="utf-8") as f:
        pool = [row["text"] for row in csv.DictReader(f)]
    kept = longtail(pool, intent_of, counts, seed=a.seed)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text"])
        writer.writerows([t] for t in kept)
    print(f"kept {len(kept)} of {len(pool)} pool texts in {a.out}")


def longtail(pool: list[str], intent_of: dict[str, str], counts: dict[str, int], *, seed: int) -> list[str]:
    """Of each intent's pool texts (in pool order), the first ``max(1, round(k * n / n_max))``,
    shuffled together; texts without a single known intent are dropped."""
    by_intent: dict[str, list[str]] = {}
    for text in pool:
        if text in intent_of:
            by_intent.setdefault(intent_of[text], []).append(text)
    largest = max(counts.values())
    kept = [t for intent, texts in sorted(by_intent.items())
            for t in texts[: max(1, round(len(texts) * counts.get(intent, 0) / largest))]]
    random.Random(seed).shuffle(kept)
    return kept


def _intents(path: Path) -> dict[str, str]:
    """Text to intent, from BANKING77's ``text,category`` file; texts with two intents are left out."""
    seen: dict[str, set[str]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            seen.setdefault(row["text"], set()).add(row.get("category") or row["intent"])
    return {text: next(iter(intents)) for text, intents in seen.items() if len(intents) == 1}


if __name__ == "__main__":
    main()
