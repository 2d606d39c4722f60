"""The anchors (baselines) of scripts/benchmark.py: the rows they train on, the finetune baseline,
the SetFit check and score.py's recall by training count."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, TOY, read_csv, toy_rows, write_csv


def script(name: str):
    """scripts/NAME.py as a module (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"anchors_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def write_predictions(path: Path, rows: list[tuple[str, str]]) -> Path:
    """A predictions CSV of (gold, predicted) pairs."""
    table = [(f"text {k}", g, p) for k, (g, p) in enumerate(rows)]
    return write_csv(path, table, header=("text", "intent", "prediction"))


# --- score.py: recall by training count ----------------------------------------------------------------------


def test_recall_by_count_on_a_hand_worked_example(tmp_path):
    # training counts: a 2, b 4 (bucket 2-4), c 7 (5-9), nothing in 10-29, d 30 and e 100 (30+), f 1 (no bucket)
    counts = {"a": 2, "b": 4, "c": 7, "d": 30, "e": 100, "f": 1}
    (tmp_path / "counts.json").write_text(json.dumps(counts))
    rows = [("a", "a"), ("a", "b"),  # a: 1/2
            ("b", "b"), ("b", "b"), ("b", "b"), ("b", "a"),  # b: 3/4
            ("c", "a"), ("c", "c"), ("c", "a"),  # c: 1/3
            ("d", "d"),  # d: 1
            ("e", "a"), ("e", "e"),  # e: 1/2
            ("f", "f")]  # f: 1, in no bucket
    scores = script("score").score(write_predictions(tmp_path / "p.csv", rows), tmp_path / "counts.json")
    assert scores["recall_by_count"] == {
        "2-4": {"recall": round((1 / 2 + 3 / 4) / 2, 4), "intents": 2},
        "5-9": {"recall": round(1 / 3, 4), "intents": 1},
        "10-29": {"recall": None, "intents": 0},  # no intent: null, never 0
        "30+": {"recall": 0.75, "intents": 2},
    }


def test_recall_by_count_is_null_in_the_printed_json_and_counts_come_from_a_training_csv(tmp_path, capsys):
    rows = [(f"x{k}", "rare") for k in range(3)] + [(f"y{k}", "big") for k in range(40)]
    train = write_csv(tmp_path / "train.csv", rows)
    preds = write_predictions(tmp_path / "p.csv", [("rare", "rare"), ("rare", "big"), ("big", "big")])
    assert script("score").main([str(preds), "--train", str(train)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["recall_by_count"] == {"2-4": {"recall": 0.5, "intents": 1}, "5-9": {"recall": None, "intents": 0},
                                          "10-29": {"recall": None, "intents": 0}, "30+": {"recall": 1.0, "intents": 1}}


# --- benchmark.py: the rows the anchors train on -------------------------------------------------------------


@pytest.fixture
def bench():
    return script("benchmark")


@pytest.fixture
def splits(tmp_path, bench) -> dict[str, Path]:
    rows = toy_rows()
    texts, intents = [t for t, _ in rows], [i for _, i in rows]
    return bench.write_splits(tmp_path / "data", train=(texts, intents),
                              validation=(texts[::3], intents[::3]), test=(texts[1::2], intents[1::2]))


def test_anchor_rows_default_to_train_and_validation_when_there_is_a_validation_split(bench):
    assert bench.anchor_rows(None, has_validation=True) == "train+validation"
    assert bench.anchor_rows(None, has_validation=False) == "train"
    assert bench.anchor_rows("train", has_validation=True) == "train"
    with pytest.raises(SystemExit, match="--anchor-rows train\\+validation: expected a validation split"):
        bench.anchor_rows("train+validation", has_validation=False)


def test_anchor_training_concatenates_train_then_validation(bench, splits):
    path = bench.anchor_training(splits, "train+validation")
    assert path == splits["train"].with_name("train+validation.csv")
    train, validation = bench.read_rows(splits["train"]), bench.read_rows(splits["validation"])
    assert bench.read_rows(path) == (train[0] + validation[0], train[1] + validation[1])
    assert bench.anchor_training(splits, "train") == splits["train"]  # train only: the file itself


def test_every_baseline_trains_on_the_chosen_rows_and_says_which(bench, splits, monkeypatch):
    seen: dict[str, tuple] = {}

    def fake(name):
        return lambda train, test, folder, seed, **kw: seen.setdefault(name, (train, test, seed))

    for b in ("frozen", "finetune", "hf", "tfidf", "setfit"):
        monkeypatch.setattr(bench, f"run_{b}", fake(b))
    a = argparse.Namespace(no_default=True, variant=[], config=None, baseline_model=None, threads=1, hf_epochs=10,
                           hf_lr=5e-5, finetune_epochs=20, setfit_python=sys.executable, setfit_iterations=5)
    for rows in ("train+validation", "train"):
        seen.clear()
        paths = {**splits, "anchor": bench.anchor_training(splits, rows)}
        order = bench.baseline_names("frozen,finetune,hf,setfit")
        recipes = bench.recipes_to_run(a, paths, order, rows)
        assert list(recipes) == [f"frozen encoder + LR (balanced), {rows}",
                                 f"fine-tune every layer (weighted CE, logit adjustment), {rows}",
                                 f"HF Trainer (plain), {rows}", f"SetFit (balanced LR head), {rows}"]
        for run in recipes.values():
            run(Path("unused"), 3)
        assert set(seen) == {"frozen", "finetune", "hf", "setfit"}
        assert all(v == (paths["anchor"], splits["test"], 3) for v in seen.values())
    assert paths["anchor"] == splits["train"]
    with pytest.raises(SystemExit, match="expected some of frozen, finetune, hf, tfidf, setfit, found 'bert'"):
        bench.baseline_names("frozen,bert")


def test_the_setfit_check_stops_with_one_line_when_setfit_does_not_import(bench, tmp_path):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n"
                      "echo \"ModuleNotFoundError: No module named 'setfit'\" >&2\nexit 1\n")
    python.chmod(0o755)
    with pytest.raises(SystemExit) as stop:
        bench.check_setfit(str(python))
    message = str(stop.value)
    assert message.count("\n") == 0 and "Traceback" not in message
    assert "cannot import setfit (ModuleNotFoundError: No module named 'setfit')" in message


def test_the_frozen_baseline_predicts_every_test_row(bench, splits, tiny_model, tmp_path):
    bench.run_frozen(splits["train"], splits["test"], tmp_path / "frozen", 0, model=tiny_model)
    preds = read_csv(tmp_path / "frozen" / "predictions.csv")
    assert [(p["text"], p["intent"]) for p in preds] == toy_rows()[1::2]
    assert all(p["prediction"] in TOY for p in preds)


def test_the_bucket_table_shows_mean_and_spread_and_a_dash_for_an_empty_bucket(bench):
    def run(r24):
        return {"recall_by_count": {"2-4": {"recall": r24, "intents": 2}, "5-9": {"recall": None, "intents": 0},
                                    "10-29": {"recall": 0.5, "intents": 1}, "30+": {"recall": 1.0, "intents": 3}}}

    table = bench.bucket_table({"x, train": {"0": run(0.25), "1": run(0.75)}}, ["x, train"])
    assert "| recipe | seeds | 2-4 (2 intents) | 5-9 (0 intents) | 10-29 (1 intents) | 30+ (3 intents) |" in table
    assert "| x, train | 2 | 0.500 ± 0.354 | - | 0.500 ± 0.000 | 1.000 ± 0.000 |" in table
    assert bench.bucket_table({"old": {"0": {"accuracy": 1.0}}}, ["old"]) == ""  # scores from before the buckets


# --- finetune_baseline.py ------------------------------------------------------------------------------------


def test_class_weights_are_inverse_frequency_and_keep_the_total():
    counts = [2, 5, 93]
    weights = script("finetune_baseline").class_weights(counts)
    assert math.isclose(sum(w * n for w, n in zip(weights, counts)), sum(counts))
    assert all(math.isclose(w * n, weights[0] * counts[0]) for w, n in zip(weights, counts))


def test_logit_adjustment_subtracts_tau_times_the_log_prior():
    adjusted_argmax = script("finetune_baseline").adjusted_argmax
    logits = [[2.0, 1.5], [3.0, 0.0]]
    prior = [0.9, 0.1]
    # row 0: 2 - log 0.9 = 2.105 < 1.5 - log 0.1 = 3.803; row 1: 3.105 > 2.303
    assert adjusted_argmax(logits, prior, 1.0) == [1, 0]
    assert adjusted_argmax(logits, prior, 0.0) == [0, 0]  # tau 0: the plain argmax


def test_finetune_trains_every_layer_and_writes_predictions(tmp_path, tiny_model):
    import torch
    from transformers import AutoModelForSequenceClassification

    ft = script("finetune_baseline")
    rows = toy_rows()
    settings = ft.Settings(epochs=3, batch_size=8, lr=3e-3, max_length=32, seed=0)
    fitted = ft.fit([t for t, _ in rows], [i for _, i in rows], str(tiny_model), settings)
    before = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=len(TOY))
    after = fitted.model
    assert not torch.equal(before.bert.embeddings.word_embeddings.weight, after.bert.embeddings.word_embeddings.weight)
    assert not torch.equal(before.bert.encoder.layer[0].attention.self.query.weight,
                           after.bert.encoder.layer[0].attention.self.query.weight)
    assert all(p.requires_grad for p in after.parameters())
    assert fitted.intents == sorted(TOY) and len(fitted.epoch_seconds) == 3
    assert fitted.prior == [len(TOY[i]) / len(rows) for i in sorted(TOY)]

    train = write_csv(tmp_path / "train.csv", rows)
    test = write_csv(tmp_path / "test.csv", rows[::2], header=("text", "category"))
    out = tmp_path / "preds" / "predictions.csv"
    args = ["--train", str(train), "--test", str(test), "--out", str(out), "--model", str(tiny_model),
            "--epochs", "2", "--batch-size", "8", "--lr", "3e-3", "--max-length", "32", "--threads", "1"]
    assert ft.main(args) == 0
    preds = read_csv(out)
    assert list(preds[0]) == ["text", "intent", "prediction"]
    assert [(p["text"], p["intent"]) for p in preds] == rows[::2]
    assert all(p["prediction"] in TOY for p in preds)


def test_finetune_refuses_a_file_without_intents_in_one_line(tmp_path, capsys):
    bad = write_csv(tmp_path / "bad.csv", [("x", "a")], header=("text", "label"))
    ft = script("finetune_baseline")
    assert ft.main(["--train", str(bad), "--test", str(bad), "--out", str(tmp_path / "p.csv"), "--model", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("finetune_baseline: error: ") and err.count("\n") == 1
    assert "expected the columns text and intent, found text,label" in err


@pytest.mark.slow  # three baselines through scripts/benchmark.py and its subprocesses
def test_benchmark_runs_the_anchors_on_train_and_validation(tmp_path, tiny_model):
    data = tmp_path / "toyset"
    data.mkdir()
    rows = toy_rows()
    write_csv(data / "train.csv", rows[::2])
    write_csv(data / "validation.csv", rows[1::2])
    write_csv(data / "test.csv", rows[1::3])
    out = tmp_path / "bench"
    cmd = [sys.executable, "scripts/benchmark.py", "--data", str(data), "--out", str(out), "--seeds", "0",
           "--no-default", "--baselines", "frozen,finetune,tfidf", "--baseline-model", str(tiny_model),
           "--finetune-epochs", "2", "--threads", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert bench_rows(out / "data" / "train+validation.csv") == rows[::2] + rows[1::2]
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["frozen encoder + LR (balanced), train+validation",
                             "fine-tune every layer (weighted CE, logit adjustment), train+validation",
                             "TF-IDF + LR (balanced), train+validation"]
    for scores in results.values():
        assert scores["0"]["n"] == len(rows[1::3]) and set(scores["0"]["recall_by_count"]) == {"2-4", "5-9", "10-29",
                                                                                              "30+"}
    table = (out / "table.md").read_text()
    assert "| TF-IDF + LR (balanced), train+validation | 1 |" in table and "2-4 (" in table


def bench_rows(path: Path) -> list[tuple[str, str]]:
    return [(r["text"], r["intent"]) for r in read_csv(path)]
