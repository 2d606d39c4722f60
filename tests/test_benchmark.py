"""scripts/benchmark.py end to end on toy data: the tiny model's recipe, a variant and a baseline."""

import csv
import json
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, TOY, toy_rows, write_csv


@pytest.mark.slow  # trains through scripts/benchmark.py in a subprocess
def test_benchmark_scores_every_recipe_and_rewrites_its_section(tmp_path, fast_overrides):
    data = tmp_path / "toyset"
    data.mkdir()
    rows = toy_rows()
    write_csv(data / "train.csv", rows)
    write_csv(data / "validation.csv", rows[::3])
    write_csv(data / "test.csv", rows[1::2])
    config = {}
    for item in fast_overrides:
        key, _, value = item.partition("=")
        section, name = key.split(".")
        config.setdefault(section, {})[name] = yaml.safe_load(value)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    md = tmp_path / "BENCH.md"
    md.write_text("# Benchmarks\n\nkept text\n")
    out = tmp_path / "bench"
    cmd = [sys.executable, "scripts/benchmark.py", "--data", str(data), "--out", str(out), "--seeds", "0", "1",
           "--config", str(tmp_path / "tiny.yaml"), "--baselines", "tfidf", "--variant",
           "no-weights:train.weighting=none,train.refit=train", "--write", str(md)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scored_first = (out / "results.json").read_text()
    # with --skip-done a second run trains nothing, keeps the scores, and replaces the section instead of adding one
    again = subprocess.run([*cmd, "--skip-done"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    assert '"recipe"' in proc.stdout and '"recipe"' not in again.stdout
    assert (out / "results.json").read_text() == scored_first

    results = json.loads((out / "results.json").read_text())
    # the baseline trained on train + validation, the rows the default's shipped model sees, and says so
    assert set(results) == {"intentbal", "intentbal no-weights", "TF-IDF + LR (balanced), train+validation"}
    with open(out / "data" / "train+validation.csv", newline="") as f:
        assert [(r["text"], r["intent"]) for r in csv.DictReader(f)] == rows + rows[::3]
    for seeds in results.values():
        assert set(seeds) == {"0", "1"}
        for scores in seeds.values():
            assert 0 <= scores["accuracy"] <= 1 and scores["n"] == len(rows[1::2])
    for recipe in ("intentbal", "TF-IDF + LR (balanced), train+validation"):
        with open(out / recipe / "seed1" / "predictions.csv", newline="") as f:
            preds = list(csv.DictReader(f))
        assert [(p["text"], p["intent"]) for p in preds] == rows[1::2]
        assert all(p["prediction"] in TOY for p in preds)
    # the default refit trains on validation, so only the variant that keeps it out is scored there
    assert "validation_macro_recall" not in results["intentbal"]["0"]
    assert 0 <= results["intentbal no-weights"]["0"]["validation_macro_recall"] <= 1
    # the user's path: trained without the test split, which only predict saw
    manifest = json.loads((out / "intentbal" / "seed0" / "run" / "manifest.json").read_text())
    assert "eval" not in manifest["data"] and manifest["config"]["data"]["eval"] is None
    assert "test.csv" not in json.dumps(manifest["config"]["data"])
    # the variant really trained with its override
    run_config = yaml.safe_load((out / "intentbal no-weights" / "seed0" / "run" / "config.yaml").read_text())
    assert run_config["train"]["weighting"] == "none" and run_config["train"]["refit"] == "train"
    text = md.read_text()
    assert "kept text" in text and text.count("<!-- quality:toyset -->") == 1
    assert "| intentbal no-weights | 2 |" in text and " ± " in text
