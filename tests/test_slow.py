"""Slow tests: the real all-MiniLM-L6-v2 and the real BANKING77 files (data/benchmarks/banking77, made by
scripts/get_datasets.py; else a local copy beside the repository)."""

import csv
import json
import random

import pytest

from intentbal.cli import main

from conftest import ROOT, SHARED, TOY_EVAL, set_args, toy_rows, write_csv

pytestmark = pytest.mark.slow
# the project's folder first; the copy beside the repository keeps the test running where nobody fetched it
BANKING = next((d for d in (ROOT / "data" / "benchmarks" / "banking77", SHARED / "banking77")
                if (d / "train.csv").is_file()), ROOT / "data" / "benchmarks" / "banking77")


@pytest.fixture
def banking_subset(tmp_path):
    """A few hundred rows of 12 BANKING77 intents, in the original `text,category` layout."""
    if not (BANKING / "train.csv").is_file():
        pytest.skip("BANKING77 is not present: python scripts/get_datasets.py --dataset banking77 --source DIR")

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
    classify = pipeline("text-classification", model=str(out / "model"), trust_remote_code=True)
    with open(test, newline="", encoding="utf-8") as f:
        first = next(csv.DictReader(f))
    result = classify(first["text"])[0]
    assert result["label"] in {r["intent"] for r in report["intents"]}
    assert 0 < result["score"] <= 1


@pytest.mark.parametrize("refit", [False, True])
def test_two_cpu_processes_with_torchrun(tmp_path, fast_overrides, refit):
    """torchrun with 2 gloo processes: one output folder, written once, and a sound report; without
    eval data the eval split is held out, and both ranks then refit on every row."""
    import socket
    import subprocess
    import sys

    train = write_csv(tmp_path / "train.csv", toy_rows())
    evalset = write_csv(tmp_path / "eval.csv", TOY_EVAL)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    sets = set_args(fast_overrides)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), "-m", "intentbal.cli", "train", "--train", str(train),
           *([] if refit else ["--eval", str(evalset)]), "--output", str(out), *sets]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("wrote ") == 1, proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.csv", "run", "train.csv"]
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["refit"] is refit
    n_train = sum(1 for line in (out / "augmentation.jsonl").read_text().splitlines()) + len(toy_rows())
    assert metrics["train_samples"] >= 15 * n_train  # every row seen once per epoch across both ranks
    if refit:  # the shipped model's augmentation is the refit's, on every row
        assert json.loads((out / "model" / "intentbal.json").read_text())["train_counts"] == {
            i: sum(1 for _, j in toy_rows() if j == i) for i in {j for _, j in toy_rows()}}
    report = json.loads((out / "report.json").read_text())
    with open(out / "predictions.csv", newline="") as f:
        preds = list(csv.DictReader(f))
    assert report["summary"]["accuracy"] == sum(p["intent"] == p["prediction"] for p in preds) / len(preds)
    from transformers import pipeline

    assert pipeline("text-classification", model=str(out / "model"), trust_remote_code=True)("refund me")[0]["label"]


def test_speed_benchmark_script_runs_on_cpu(tmp_path, tiny_model):
    """scripts/bench_speed.py, GPU flags, --limit, --eager-too and --all-layers-too included, end to end
    on the tiny model and toy data."""
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    write_csv(data / "train.csv", toy_rows())
    write_csv(data / "test.csv", toy_rows())
    md = tmp_path / "BENCH.md"
    md.write_text("# Benchmarks\n\nkept text\n")
    proc = subprocess.run([sys.executable, "scripts/bench_speed.py", "--data", str(data), "--model", str(tiny_model),
                           "--epochs", "2", "--batch-size", "8", "--max-length", "32", "--limit", "15", "--eager-too",
                           "--all-layers-too", "--gpu", "--write", str(md)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    steady = result["steady_train_samples_per_second"]  # the second epoch of each side
    assert steady["baseline"] > 0 and steady["intentbal"] > 0 and result["train_speedup"] > 0
    assert result["wall_seconds"]["baseline"] > 0 and result["wall_speedup"] > 0 and result["predict_speedup"] > 0
    eager = result["intentbal_eager_step"]
    assert eager["step"] == "eager" and eager["steady_samples_per_second"] > 0 and 0 <= eager["test_accuracy"] <= 1
    full = result["intentbal_all_layers"]
    assert full["steady_samples_per_second"] > 0 and result["all_layers_train_speedup"] > 0
    text = md.read_text()
    assert "kept text" in text and "<!-- speed:gpu:start -->" in text and "a sample of 15 rows" in text
    assert "intentbal training every layer, as the baseline does" in text
    assert "training samples/s, steady state" in text and "end-to-end wall time" in text
    assert "with train.step=eager" in text
