"""Put the full benchmark data sets into data/benchmarks/ (git-ignored: they are not shipped).

  python scripts/get_datasets.py --dataset banking77 --source DIR   # a local copy
  python scripts/get_datasets.py --dataset clinc150 --source DIR
  python scripts/get_datasets.py --dataset banking77 --hub          # the Hugging Face Hub
  python scripts/get_datasets.py --dataset clinc150 --hub

- ``banking77`` (Casanueva et al. 2020, CC BY 4.0) -> ``data/benchmarks/banking77/``:
  ``train.csv`` and ``test.csv`` with the columns ``text,category``. --source: a folder holding
  the official CSV files (and, copied when present, ``LICENSE`` and ``categories.json``);
  --hub: ``PolyAI/banking77``.
- ``clinc150`` (Larson et al. 2019, CC BY 3.0) -> ``data/benchmarks/clinc150/``: the CLINC
  JSON files (``data_imbalanced.json`` and friends: ``train``, ``val``, ``test``, ``oos_train``,
  ``oos_val``, ``oos_test``, each a list of ``[text, intent]``). --source: a folder holding
  them (and ``LICENSE``, ``domains.json`` when present); --hub: ``clinc_oos``, whose configs
  ``small``, ``imbalanced`` and ``plus`` become ``data_small.json``, ``data_imbalanced.json``
  and ``data_oos_plus.json`` (``data_full.json`` is not on the Hub; its in-scope rows are those
  of ``data_oos_plus.json``).

--hub needs the network and ``pip install datasets``; the tests run it on a stand-in for
``datasets.load_dataset``. BANKING77-LT is shipped (``data/benchmarks/banking77-lt/``) and
built by ``scripts/make_banking77_lt.py``.
CLINC150-LT likewise (``data/benchmarks/clinc150-lt/``, by ``scripts/make_clinc150_lt.py``).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "data" / "benchmarks"
BANKING77_FILES = ("train.csv", "test.csv")
BANKING77_EXTRAS = ("LICENSE", "categories.json")
CLINC_FILES = ("data_full.json", "data_small.json", "data_imbalanced.json", "data_oos_plus.json")
CLINC_EXTRAS = ("LICENSE", "domains.json")
CLINC_HUB_CONFIGS = {"small": "data_small.json", "imbalanced": "data_imbalanced.json", "plus": "data_oos_plus.json"}
CLINC_SPLITS = {"train": "train", "validation": "val", "test": "test"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=("banking77", "clinc150"), required=True)
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--source", type=Path, help="folder holding a local copy of the data set")
    source.add_argument("--hub", action="store_true", help="download it from the Hugging Face Hub")
    ap.add_argument("--out", type=Path, help="destination folder (default: data/benchmarks/DATASET)")
    a = ap.parse_args(argv)

    out = a.out or BENCHMARKS / a.dataset
    try:
        if a.hub:
            written = (banking77_from_hub if a.dataset == "banking77" else clinc150_from_hub)(out)
        else:
            banking = a.dataset == "banking77"
            required, extras = (BANKING77_FILES, BANKING77_EXTRAS) if banking else (CLINC_FILES, CLINC_EXTRAS)
            written = copy_local(a.source, out, required=required, extras=extras,
                                 check=_check_banking77_csv if a.dataset == "banking77" else _check_clinc_json)
    except (OSError, ValueError) as exc:
        print(f"get_datasets: error: {exc}", file=sys.stderr)
        return 2
    print(f"{a.dataset}: wrote {', '.join(p.name for p in written)} to {out}")
    return 0


def copy_local(source: Path, out: Path, *, required: tuple[str, ...], extras: tuple[str, ...],
               check: Callable[[Path], None]) -> list[Path]:
    """Copy ``required`` files (each checked by ``check`` first; all must exist) and whichever of
    ``extras`` exist from ``source`` to ``out``. Nothing is copied when a required file is missing or bad."""
    missing = [name for name in required if not (source / name).is_file()]
    if missing:
        raise ValueError(f"{source}: expected {', '.join(required)}, found {', '.join(missing)} missing; "
                         "give the folder of the original files")
    for name in required:
        check(source / name)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in required + tuple(e for e in extras if (source / e).is_file()):
        tmp = out / (name + ".tmp")
        shutil.copyfile(source / name, tmp)
        written.append(tmp.replace(out / name))
    return written


def _check_banking77_csv(path: Path) -> None:
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), [])
    if header[:2] != ["text", "category"]:
        raise ValueError(f"{path}: expected the header text,category of BANKING77, found {','.join(header)}")


def _check_clinc_json(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    missing = [s for s in ("train", "val", "test") if s not in data]
    if missing:
        raise ValueError(f"{path}: expected the CLINC150 splits train, val, test, found {', '.join(missing)} missing")


def banking77_from_hub(out: Path, *, load_dataset: Callable[..., Any] | None = None) -> list[Path]:
    """``PolyAI/banking77`` written as BANKING77's own ``train.csv`` and ``test.csv`` (text,category)."""
    dataset = (load_dataset or _load_dataset())("PolyAI/banking77")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("train", "test"):
        split = dataset[name]
        names = split.features["label"].names
        rows = [(text, names[label]) for text, label in zip(split["text"], split["label"])]
        written.append(_write_csv(out / f"{name}.csv", ["text", "category"], rows))
    return written


def clinc150_from_hub(out: Path, *, load_dataset: Callable[..., Any] | None = None) -> list[Path]:
    """``clinc_oos`` configs written as the CLINC150 JSON files, out-of-scope rows in the ``oos_*`` splits."""
    load = load_dataset or _load_dataset()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for config, filename in CLINC_HUB_CONFIGS.items():
        dataset = load("clinc_oos", config)
        data: dict[str, list[list[str]]] = {}
        for hub_split, split in CLINC_SPLITS.items():
            part = dataset[hub_split]
            names = part.features["intent"].names
            rows = [[text, names[intent]] for text, intent in zip(part["text"], part["intent"])]
            data[split] = [r for r in rows if r[1] != "oos"]
            data[f"oos_{split}"] = [r for r in rows if r[1] == "oos"]
        written.append(_write_text(out / filename, json.dumps(data, indent=1, ensure_ascii=False) + "\n"))
    return written


def _load_dataset() -> Callable[..., Any]:
    try:
        from datasets import load_dataset
    except ImportError as exc:
        raise ValueError("--hub needs the datasets package, found it missing; pip install datasets") from exc
    return load_dataset


def _write_csv(path: Path, header: list[str], rows: list[tuple[str, str]]) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return tmp.replace(path)


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    return tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
