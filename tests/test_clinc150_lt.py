"""CLINC150-LT: scripts/make_clinc150_lt.py and the shipped data/benchmarks/clinc150-lt/."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, read_csv

SHIPPED = ROOT / "data" / "benchmarks" / "clinc150-lt"
LT_FILES = ("train.csv", "validation.csv", "test.csv", "oos_test.csv", "unlabeled.csv", "train_counts.json")
SOURCE = SHARED / "clinc150" / "data_full.json"


def script(name: str):
    """scripts/NAME.py as a module (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def clinc_like(path: Path, intents: int = 8) -> dict[str, list[list[str]]]:
    """A data_full.json-shaped file with 100 train, 6 val and 3 test rows per intent and a few
    out-of-scope rows; returns what it wrote."""
    names = [f"intent_{k:02d}" for k in range(intents)]
    doc = {
        "train": [[f"{n} train {k}", n] for n in names for k in range(100)],
        "val": [[f"{n} val {k}", n] for n in names for k in range(6)],
        "test": [[f"{n} test {k}", n] for k in range(3) for n in names],
        "oos_train": [[f"oos train {k}", "oos"] for k in range(4)],
        "oos_val": [[f"oos val {k}", "oos"] for k in range(4)],
        "oos_test": [[f"oos test {k}", "oos"] for k in range(7)],
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    return doc


def as_rows(pairs: list[list[str]]) -> list[dict[str, str]]:
    return [{"text": text, "intent": intent} for text, intent in pairs]


@pytest.mark.skipif(not SOURCE.is_file(), reason="needs a local copy of CLINC150 (SHARED / clinc150 / data_full.json)")
def test_builder_reproduces_the_shipped_clinc150_lt_byte_for_byte(tmp_path):
    out = tmp_path / "lt"
    assert script("make_clinc150_lt").main(["--source", str(SOURCE), "--out", str(out)]) == 0
    for name in LT_FILES:
        assert (out / name).read_bytes() == (SHIPPED / name).read_bytes(), name


def test_builder_draws_a_long_tail_from_train_and_validation_from_val(tmp_path):
    doc = clinc_like(tmp_path / "data_full.json")
    builder = script("make_clinc150_lt")
    out = tmp_path / "lt"
    args = ["--source", str(tmp_path / "data_full.json"), "--out", str(out)]
    assert builder.main(args) == 0

    counts = json.loads((out / "train_counts.json").read_text())
    train, validation = read_csv(out / "train.csv"), read_csv(out / "validation.csv")
    unlabeled = [r["text"] for r in read_csv(out / "unlabeled.csv")]
    # intent i of the seeded order keeps round(100 * 50 ** (-i / 7)): 100 for the first, 2 for the last
    assert list(counts.values()) == [round(100 * 50 ** (-i / 7)) for i in range(8)]
    assert list(counts) != sorted(counts) and sorted(counts) == sorted({i for _, i in doc["train"]})
    assert Counter(r["intent"] for r in train) == counts
    # every train row once, in train.csv (with its own intent) or unlabeled.csv (without)
    assert all(r in as_rows(doc["train"]) for r in train)
    assert sorted([r["text"] for r in train] + unlabeled) == sorted(text for text, _ in doc["train"])
    assert all(r in as_rows(doc["val"]) for r in validation)
    assert Counter(r["intent"] for r in validation) == dict.fromkeys(counts, 5)
    assert read_csv(out / "test.csv") == as_rows(doc["test"])
    assert read_csv(out / "oos_test.csv") == as_rows(doc["oos_test"])
    assert not any("oos" in text for text in [r["text"] for r in train + validation] + unlabeled)
    assert (out / "train.csv").read_bytes().startswith(b"text,intent\r\n")

    again, other_seed = tmp_path / "again", tmp_path / "seed1"
    assert builder.main(args[:3] + [str(again)]) == 0
    assert builder.main(args[:3] + [str(other_seed), "--seed", "1"]) == 0
    assert all((again / n).read_bytes() == (out / n).read_bytes() for n in LT_FILES)
    assert (other_seed / "train.csv").read_bytes() != (out / "train.csv").read_bytes()
    assert (other_seed / "validation.csv").read_bytes() != (out / "validation.csv").read_bytes()


@pytest.mark.parametrize("spoil, message", [
    (lambda doc: doc.pop("oos_test"), "expected CLINC150's splits train,val,test,oos_test"),
    (lambda doc: doc["train"].append(["a text without its intent"]), "expected a list of [text, intent]"),
    (lambda doc: doc["val"].append(["a stray", "not_an_intent"]), "expected the intents of train only"),
    (lambda doc: doc["oos_test"].append(["in scope", "intent_00"]), "expected only the intent oos"),
    (lambda doc: doc.update(val=doc["val"][:-2]), "fewer than 5 rows"),
    (None, "not JSON"),
], ids=["no-oos_test", "not-a-pair", "stray-val-intent", "in-scope-oos_test", "short-val", "not-json"])
def test_builder_refuses_a_malformed_source_and_writes_nothing(tmp_path, capsys, spoil, message):
    source = tmp_path / "data_full.json"
    doc = clinc_like(source, intents=2)
    if spoil is None:
        source.write_text("train,text\n", encoding="utf-8")
    else:
        spoil(doc)
        source.write_text(json.dumps(doc), encoding="utf-8")
    out = tmp_path / "lt"
    assert script("make_clinc150_lt").main(["--source", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("make_clinc150_lt: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert not out.exists()


def test_shipped_clinc150_lt_is_complete_and_consistent():
    assert sorted(p.name for p in SHIPPED.iterdir()) == sorted((*LT_FILES, "LICENSE", "README.md"))
    counts = json.loads((SHIPPED / "train_counts.json").read_text())
    train, validation = read_csv(SHIPPED / "train.csv"), read_csv(SHIPPED / "validation.csv")
    test, oos_test = read_csv(SHIPPED / "test.csv"), read_csv(SHIPPED / "oos_test.csv")
    unlabeled = read_csv(SHIPPED / "unlabeled.csv")
    assert Counter(r["intent"] for r in train) == counts and len(counts) == 150
    assert list(counts.values()) == [round(100 * 50 ** (-i / 149)) for i in range(150)]  # 100 down to 2
    assert Counter(r["intent"] for r in validation) == dict.fromkeys(counts, 5)
    assert Counter(r["intent"] for r in test) == dict.fromkeys(counts, 30)
    assert len(oos_test) == 1000 and {r["intent"] for r in oos_test} == {"oos"}
    assert len(train) + len(unlabeled) == 15000 and list(unlabeled[0]) == ["text"]
    texts = {name: {r["text"] for r in rows} for name, rows in
             {"train": train, "validation": validation, "test": test, "unlabeled": unlabeled}.items()}
    assert not texts["train"] & (texts["validation"] | texts["test"] | texts["unlabeled"])
    assert "Attribution 3.0 Unported" in (SHIPPED / "LICENSE").read_text(encoding="utf-8")
    readme = (SHIPPED / "README.md").read_text(encoding="utf-8")
    assert "Larson" in readme and "python scripts/make_clinc150_lt.py --source PATH/TO/data_full.json" in readme
    assert "shared" not in readme
