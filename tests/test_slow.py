"""Slow tests: the real all-MiniLM-L6-v2 and the real BANKING77 files from ../shared/datasets."""

import csv
import json
import random

import pytest

from intentbal.cli import main

from conftest import SHARED

pytestmark = pytest.mark.slow
BANKING = SHARED / "banking77"


@pytest.fixture
def banking_subset(tmp_path):
    """A few hundred rows of 12 BANKING77 intents, in the original `text,category` layout."""
    if not (BANKING / "train.csv").is_file():
        pytest.skip("../shared/datasets/banking77 is not present")

    def take(name, per_intent):
        with open(BANKING / name, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        keep = sorted({r["category"] for r in rows})[:12]
        random.Random(0).shuffle(rows)
        picked, seen = [], {}
        for r in rows:
            if r["category"] in keep and seen.get(r["category"], 0) < per_intent(keep.index(r["category"])):
                seen[r["category"]] = seen.get(r["category"], 0) + 1
                picked.append(r)
        path = tmp_path / name
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "category"])
            writer.writeheader()
            writer.writerows(picked)
        return path

    return take("train.csv", lambda i: 40 if i < 4 else 6), take("test.csv", lambda i: 10)


def test_minilm_on_banking77_rows_loads_with_pipeline(tmp_path, banking_subset):
    from transformers import pipeline

    train, test = banking_subset
    out = tmp_path / "run"
    code = main(["train", "--train", str(train), "--eval", str(test), "--output", str(out),
                 "--set", "data.intent_column=category", "--set", "train.epochs=6",
                 "--set", "train.batch_size=16", "--set", "model.max_length=48"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["intents_evaluated"] == 12
    assert report["summary"]["accuracy"] > 0.5, report["summary"]
    classify = pipeline("text-classification", model=str(out / "model"))
    with open(test, newline="", encoding="utf-8") as f:
        first = next(csv.DictReader(f))
    result = classify(first["text"])[0]
    assert result["label"] in {r["intent"] for r in report["intents"]}
    assert 0 < result["score"] <= 1
