"""The data and scoring scripts: BANKING77-LT's builder, get_datasets.py, score.py and the Trainer baseline."""

from __future__ import annotations

import csv
import importlib.util
import json
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, TOY, toy_rows, write_csv

SHIPPED = ROOT / "data" / "benchmarks" / "banking77-lt"
LT_FILES = ("train.csv", "validation.csv", "test.csv", "unlabeled.csv", "train_counts.json")


def script(name: str):
    """scripts/NAME.py as a module (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def banking77_like(folder: Path, per_intent: dict[str, int]) -> Path:
    """A folder with BANKING77-style train.csv and test.csv (text,category)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [(f"{intent} question {k}", intent) for intent, n in per_intent.items() for k in range(n)]
    write_csv(folder / "train.csv", rows, header=("text", "category"))
    write_csv(folder / "test.csv", rows[::4], header=("text", "category"))
    return folder


# --- BANKING77-LT ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not (SHARED / "banking77" / "train.csv").is_file(),
                    reason="needs a local copy of BANKING77 in ../shared/datasets/banking77")
def test_builder_reproduces_the_shipped_banking77_lt_byte_for_byte(tmp_path):
    out = tmp_path / "lt"
    assert script("make_banking77_lt").main(["--source", str(SHARED / "banking77"), "--out", str(out)]) == 0
    for name in LT_FILES:
        assert (out / name).read_bytes() == (SHIPPED / name).read_bytes(), name


def test_builder_draws_a_long_tail_and_keeps_every_row_once(tmp_path):
    per_intent = {f"intent_{k:02d}": 30 + k for k in range(10)}
    source = banking77_like(tmp_path / "b77", per_intent)
    builder = script("make_banking77_lt")
    out = tmp_path / "lt"
    args = ["--source", str(source), "--out", str(out), "--n-max", "20", "--ratio", "10", "--val-per-intent", "3"]
    assert builder.main(args) == 0

    counts = json.loads((out / "train_counts.json").read_text())
    train, validation = read_csv(out / "train.csv"), read_csv(out / "validation.csv")
    unlabeled = [r["text"] for r in read_csv(out / "unlabeled.csv")]
    assert Counter(r["intent"] for r in train) == counts
    # intent i of the seeded order keeps round(20 * 10 ** (-i / 9)): 20 for the first, 2 for the last
    assert list(counts.values()) == [max(2, round(20 * 10 ** (-i / 9))) for i in range(10)]
    assert sorted(counts) == sorted(per_intent)
    assert Counter(r["intent"] for r in validation) == {intent: 3 for intent in per_intent}
    for row in train + validation:  # the intent travels with its own text
        assert row["text"].startswith(row["intent"] + " ")
    all_texts = [r["text"] for r in train] + [r["text"] for r in validation] + unlabeled
    assert sorted(all_texts) == sorted(f"{i} question {k}" for i, n in per_intent.items() for k in range(n))
    assert read_csv(out / "test.csv") == [{"text": r["text"], "intent": r["category"]}
                                         for r in read_csv(source / "test.csv")]

    again, other_seed = tmp_path / "again", tmp_path / "seed1"
    assert builder.main(args[:3] + [str(again)] + args[4:]) == 0
    assert builder.main(args[:3] + [str(other_seed)] + args[4:] + ["--seed", "1"]) == 0
    assert all((again / n).read_bytes() == (out / n).read_bytes() for n in LT_FILES)
    assert (other_seed / "train.csv").read_bytes() != (out / "train.csv").read_bytes()


def test_builder_refuses_a_file_without_banking77_columns(tmp_path, capsys):
    source = tmp_path / "b77"
    source.mkdir()
    write_csv(source / "train.csv", toy_rows())  # text,intent: not the official layout
    write_csv(source / "test.csv", toy_rows())
    out = tmp_path / "lt"
    assert script("make_banking77_lt").main(["--source", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "expected the columns text,category" in err and err.count("\n") == 1
    assert not out.exists()


def test_shipped_banking77_lt_is_complete_and_consistent():
    counts = json.loads((SHIPPED / "train_counts.json").read_text())
    train, validation = read_csv(SHIPPED / "train.csv"), read_csv(SHIPPED / "validation.csv")
    test, unlabeled = read_csv(SHIPPED / "test.csv"), read_csv(SHIPPED / "unlabeled.csv")
    assert Counter(r["intent"] for r in train) == counts and len(counts) == 77
    assert (max(counts.values()), min(counts.values())) == (100, 2)
    assert set(Counter(r["intent"] for r in validation).values()) == {5}
    assert set(Counter(r["intent"] for r in test).values()) == {40}
    texts = [{r["text"] for r in rows} for rows in (train, validation, unlabeled)]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    assert "Attribution 4.0 International" in (SHIPPED / "LICENSE").read_text()
    readme = (SHIPPED / "README.md").read_text()
    assert "Casanueva" in readme and "scripts/make_banking77_lt.py" in readme


def test_the_long_tailed_pool_keeps_each_intents_share_of_the_largest_training_count():
    pool = [f"a{k}" for k in range(10)] + [f"b{k}" for k in range(10)] + ["c0", "c1", "twice", "unknown"]
    intent_of = {t: t[0] for t in pool if t not in ("twice", "unknown")}
    counts = {"a": 100, "b": 30, "c": 2}
    kept = script("make_unlabeled_longtail").longtail(pool, intent_of, counts, seed=0)
    assert sorted(kept) == sorted([f"a{k}" for k in range(10)] + ["b0", "b1", "b2", "c0"])
    assert kept != sorted(kept)  # shuffled


def test_the_shipped_long_tailed_pool_is_part_of_the_pool_and_as_skewed_as_train():
    pool = {r["text"] for r in read_csv(SHIPPED / "unlabeled.csv")}
    longtail = [r["text"] for r in read_csv(SHIPPED / "unlabeled_longtail.csv")]
    assert len(longtail) == len(set(longtail)) == 1449 and set(longtail) <= pool  # 7,747 in the pool
    if (SHARED / "banking77" / "train.csv").is_file():
        intent_of = {r["text"]: r["category"] for r in read_csv(SHARED / "banking77" / "train.csv")}
        counts = json.loads((SHIPPED / "train_counts.json").read_text())
        kept, available = Counter(intent_of[t] for t in longtail), Counter(intent_of[t] for t in pool)
        share = {intent: kept[intent] / n for intent, n in available.items()}
        assert all(abs(share[i] - counts[i] / 100) <= 1 / available[i] or kept[i] == 1 for i in share)
        assert share[min(counts, key=counts.get)] < 0.05 and max(share.values()) > 0.9


# --- get_datasets.py --------------------------------------------------------------------------------------------


def test_get_datasets_copies_a_local_banking77(tmp_path, capsys):
    source = banking77_like(tmp_path / "src", {"a": 3, "b": 4})
    (source / "LICENSE").write_text("licence text")
    out = tmp_path / "out"
    assert script("get_datasets").main(["--dataset", "banking77", "--source", str(source), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["LICENSE", "test.csv", "train.csv"]
    assert (out / "train.csv").read_bytes() == (source / "train.csv").read_bytes()


@pytest.mark.parametrize("dataset, bad", [("banking77", "missing"), ("banking77", "header"), ("clinc150", "missing")])
def test_get_datasets_refuses_an_incomplete_copy_and_writes_nothing(tmp_path, capsys, dataset, bad):
    source = banking77_like(tmp_path / "src", {"a": 3, "b": 4})
    if bad == "missing":
        (source / "test.csv").unlink()
    else:
        write_csv(source / "test.csv", toy_rows())
    out = tmp_path / "out"
    assert script("get_datasets").main(["--dataset", dataset, "--source", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("get_datasets: error: ") and err.count("\n") == 1
    assert not out.exists()


def test_get_datasets_turns_hub_datasets_into_the_original_files(tmp_path):
    datasets = pytest.importorskip("datasets")

    def fake(texts_intents: list[tuple[str, str]], column: str, names: list[str]):
        features = datasets.Features({"text": datasets.Value("string"), column: datasets.ClassLabel(names=names)})
        return datasets.Dataset.from_dict({"text": [t for t, _ in texts_intents],
                                           column: [names.index(i) for _, i in texts_intents]}, features=features)

    calls = []

    def load_dataset(name, config=None):
        calls.append((name, config))
        if name == "PolyAI/banking77":
            names = sorted(TOY)
            return {"train": fake(toy_rows(), "label", names), "test": fake(toy_rows()[:3], "label", names)}
        rows = toy_rows() + [("tell me a joke", "oos")]
        names = sorted(TOY) + ["oos"]
        return {split: fake(rows, "intent", names) for split in ("train", "validation", "test")}

    getter = script("get_datasets")
    getter.banking77_from_hub(tmp_path / "b77", load_dataset=load_dataset)
    assert [(r["text"], r["category"]) for r in read_csv(tmp_path / "b77" / "train.csv")] == toy_rows()
    assert len(read_csv(tmp_path / "b77" / "test.csv")) == 3

    getter.clinc150_from_hub(tmp_path / "clinc", load_dataset=load_dataset)
    assert calls[1:] == [("clinc_oos", "small"), ("clinc_oos", "imbalanced"), ("clinc_oos", "plus")]
    data = json.loads((tmp_path / "clinc" / "data_imbalanced.json").read_text())
    assert sorted(data) == ["oos_test", "oos_train", "oos_val", "test", "train", "val"]
    assert data["val"] == [list(r) for r in toy_rows()] and data["oos_test"] == [["tell me a joke", "oos"]]
    # intentbal reads the file it wrote, in-scope rows only by default
    from intentbal.config import Config
    from intentbal.data.inputs import load_data

    loaded = load_data(Config(), Path(f"{tmp_path / 'clinc' / 'data_imbalanced.json'}#val"), "validation")
    assert list(zip(loaded.texts, loaded.intents)) == toy_rows()


# --- score.py ---------------------------------------------------------------------------------------------------


def write_predictions(path: Path, rows: list[tuple[str, str]]) -> Path:
    """rows of (gold, predicted) as intentbal's predictions.csv."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "prediction", "confidence", "intent"])
        writer.writerows((f"text {k}", p, "0.9", g) for k, (g, p) in enumerate(rows))
    return path


def test_score_on_a_hand_worked_example(tmp_path):
    # gold a: 4 rows, 3 right; b: 2 rows, 1 right (1 predicted a); c: 1 row, wrong (predicted b); d: 2, both right
    rows = [("a", "a"), ("a", "a"), ("a", "a"), ("a", "d"), ("b", "b"), ("b", "a"), ("c", "b"), ("d", "d"), ("d", "d")]
    preds = write_predictions(tmp_path / "p.csv", rows)
    counts = tmp_path / "counts.json"
    counts.write_text(json.dumps({"a": 50, "b": 5, "c": 2, "d": 20}))
    s = script("score").score(preds, counts)
    recall = {"a": 3 / 4, "b": 1 / 2, "c": 0.0, "d": 1.0}
    precision = {"a": 3 / 4, "b": 1 / 2, "c": 0.0, "d": 2 / 3}
    f1 = {i: 2 * precision[i] * recall[i] / (precision[i] + recall[i]) if recall[i] else 0.0 for i in recall}
    assert s["n"] == 9 and s["accuracy"] == round(6 / 9, 4)
    assert s["macro_recall"] == round(sum(recall.values()) / 4, 4)
    assert s["macro_f1"] == round(sum(f1.values()) / 4, 4)
    assert s["tail_intents"] == ["c"] and s["tail_recall"] == 0.0  # a third of 4 intents is 1: the rarest
    assert (s["worst_recall"], s["worst_intent"]) == (0.0, "c")
    assert s["below_50"] == 1 and s["below_50_intents"] == ["c"]  # b's 0.5 is not under 0.5

    # the same counts from a training CSV, and an out-of-scope label left out of the intents
    train = write_csv(tmp_path / "train.csv", [(f"t{k}", i) for i, n in {"a": 50, "b": 5, "c": 2, "d": 20}.items()
                                               for k in range(n)])
    oos = write_predictions(tmp_path / "oos.csv", rows + [("oos", "oos"), ("oos", "a"), ("oos", "oos"), ("oos", "d")])
    with_oos = script("score").score(oos, train, oos_label="oos")
    assert with_oos["oos_recall"] == 0.5 and with_oos["accuracy"] == s["accuracy"] and with_oos["n"] == 13
    assert with_oos["macro_recall"] == s["macro_recall"] and "oos" not in with_oos["below_50_intents"]


def test_score_cli_prints_and_writes_json_and_refuses_a_file_without_predictions(tmp_path, capsys):
    preds = write_predictions(tmp_path / "p.csv", [("a", "a"), ("b", "a")])
    train = write_csv(tmp_path / "train.csv", [("x", "a"), ("y", "b")], header=("text", "category"))
    scorer = script("score")
    assert scorer.main([str(preds), "--train", str(train), "--output", str(tmp_path / "s.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "s.json").read_text()) and printed["accuracy"] == 0.5
    write_csv(tmp_path / "bad.csv", [("x", "a")])
    assert scorer.main([str(tmp_path / "bad.csv"), "--train", str(train)]) == 2
    err = capsys.readouterr().err
    assert "expected the columns intent and prediction" in err and err.count("\n") == 1


@pytest.mark.skipif(not (SHARED.parent / "bench" / "score.py").is_file(),
                    reason="needs the independent scorer in ../shared/bench/score.py")
def test_score_agrees_with_the_independent_scorer(tmp_path):
    rng = random.Random(3)
    intents = [f"intent_{k}" for k in range(13)]
    counts = {i: rng.randint(1, 60) for i in intents}
    rows = [(g, g if rng.random() < 0.6 else rng.choice(intents + ["oos"])) for g in intents for _ in range(7)]
    rows += [("oos", rng.choice(["oos", "intent_1"])) for _ in range(9)]
    preds = write_predictions(tmp_path / "p.csv", rows)
    (tmp_path / "counts.json").write_text(json.dumps(counts))
    for oos in ([], ["oos"]):
        theirs = subprocess.run([sys.executable, str(SHARED.parent / "bench" / "score.py"), str(preds),
                                 str(tmp_path / "counts.json"), *oos], capture_output=True, text=True, check=True)
        theirs = json.loads(theirs.stdout)
        ours = script("score").score(preds, tmp_path / "counts.json", oos_label=oos[0] if oos else None)
        assert theirs and {k: ours[k] for k in theirs} == theirs


# --- the plain Trainer baseline --------------------------------------------------------------------------------


def test_trainer_baseline_defaults_are_the_default_recipe():
    from intentbal.config import Config

    recipe = Config()
    a = script("hf_trainer_baseline").parser().parse_args(["--train", "t.csv", "--test", "e.csv", "--out", "p.csv"])
    assert (a.epochs, a.batch_size, a.lr, a.max_length, a.seed) == (
        recipe.train.epochs, recipe.train.batch_size, recipe.train.learning_rate, recipe.model.max_length, recipe.seed)
    assert a.model is None and not a.bf16  # None: the embedded all-MiniLM-L6-v2, the recipe's default model


@pytest.mark.slow
def test_trainer_baseline_trains_predicts_and_is_scored(tmp_path, tiny_model):
    train = write_csv(tmp_path / "train.csv", toy_rows())
    test = write_csv(tmp_path / "test.csv", toy_rows()[::2], header=("text", "category"))
    out = tmp_path / "preds" / "predictions.csv"
    proc = subprocess.run([sys.executable, "scripts/hf_trainer_baseline.py", "--train", str(train), "--test", str(test),
                           "--out", str(out), "--model", str(tiny_model), "--epochs", "30", "--lr", "0.003",
                           "--batch-size", "8", "--max-length", "32"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    timings = json.loads(proc.stdout.strip().splitlines()[-1])
    assert timings["train_samples_per_second"] > 0 and timings["predict_samples_per_second"] > 0
    preds = read_csv(out)
    assert list(preds[0]) == ["text", "prediction", "confidence", "intent"]
    assert [(p["text"], p["intent"]) for p in preds] == toy_rows()[::2]
    assert all(p["prediction"] in TOY and 0 < float(p["confidence"]) <= 1 for p in preds)
    scores = script("score").score(out, train)
    assert scores["n"] == len(preds) and scores["accuracy"] > 0.5, scores  # the toy intents are easy to learn


# --- bench_self_training.py ------------------------------------------------------------------------------------


def test_self_training_bench_scores_the_borrowed_labels_against_a_labelled_copy(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # it imports bench_augment, as it does when run
    bench = script("bench_self_training")
    truth = bench.truth_labels(write_csv(tmp_path / "pool.csv", [(" hi", "greet"), ("bye", "leave"), ("card?", "card")],
                                         header=("text", "category")))
    assert truth == {"hi": "greet", "bye": "leave", "card?": "card"}
    for seed, rows in {0: [("hi", "greet"), ("bye", "greet")], 1: [("hi", "greet"), ("bye", "leave"),
                                                                    ("card?", "card"), ("unknown", "card")]}.items():
        folder = tmp_path / "out" / "threshold 0.7" / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "pseudo_labels.jsonl").write_text(
            "".join(json.dumps({"text": t, "intent": i, "confidence": 0.8}) + "\n" for t, i in rows))
    assert bench.borrowed([{"text": "hi", "intent": "greet"}, {"text": "bye", "intent": "greet"}], truth) == (2, 0.5)
    assert bench.borrowed([], truth) == (0, None)  # nothing kept has no precision, not 0
    for seed in (0, 1):
        (tmp_path / "out" / "threshold 0.9" / f"seed{seed}").mkdir(parents=True)  # runs that borrowed nothing
    table = bench.borrowed_table(tmp_path / "out", ["threshold 0.7", "threshold 0.9"], [0, 1], truth)
    assert "| threshold 0.7 | 3 ± 1 | 0.625 ± 0.177 |" in table  # (2, 0.5) and (4, 0.75)
    assert "| threshold 0.9 | 0 ± 0 | - |" in table  # nothing borrowed has no precision
    with pytest.raises(SystemExit, match="expected a finished run"):
        bench.borrowed_table(tmp_path / "out", ["threshold 0.5"], [0], truth)
    with pytest.raises(SystemExit, match="expected columns text and intent"):
        bench.truth_labels(write_csv(tmp_path / "bad.csv", [("hi",)], header=("utterance",)))


# --- bench_pool.py -----------------------------------------------------------------------------------------------


def test_synthetic_pools_are_distinct_seeded_and_start_with_the_real_texts(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # it imports bench_speed, as it does when run
    bench = script("bench_pool")
    texts = ["where is my card", "top up failed", "where is my card", "refund please"]
    pool = bench.synthetic_pool(texts, 30, seed=0)
    assert len(pool) == len(set(pool)) == 30
    assert pool[:3] == ["where is my card", "top up failed", "refund please"]
    assert pool == bench.synthetic_pool(texts, 30, seed=0) != bench.synthetic_pool(texts, 30, seed=1)
    assert bench.synthetic_pool(texts, 2, seed=0) == texts[:2]


@pytest.mark.slow  # four short trainings through the CLI
def test_pool_bench_times_the_default_with_and_without_pools(tmp_path, fast_overrides):
    data = tmp_path / "data"
    data.mkdir()
    write_csv(data / "train.csv", toy_rows())
    write_csv(data / "validation.csv", toy_rows()[::3])
    write_csv(data / "unlabeled.csv", [(f"{t} today",) for t, _ in toy_rows()], header=("text",))
    md = tmp_path / "BENCH.md"
    md.write_text("# Bench\n\n<!-- pool-cost:start -->\nold\n<!-- pool-cost:end -->\nkept\n")
    sets = [x for o in [*fast_overrides, "train.epochs=2", "evaluate.plots=false"] for x in ("--set", o)]
    proc = subprocess.run([sys.executable, "scripts/bench_pool.py", "--data", str(data), "--out", str(tmp_path / "out"),
                           "--sizes", "40", "80", "--write", str(md), *sets],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["pool_rows"] for r in runs] == [0, len(toy_rows()), 40, 80]
    assert runs[0]["borrowed"] == 0 and all(r["seconds"] > 0 and r["peak_mb"] > 0 for r in runs)
    text = md.read_text()
    assert "old" not in text and text.endswith("<!-- pool-cost:end -->\nkept\n")
    assert "| 80 rows (synthetic) | 80 |" in text and "| no pool | 0 | 0 |" in text
    (data / "unlabeled.csv").unlink()
    proc = subprocess.run([sys.executable, "scripts/bench_pool.py", "--data", str(data), "--out", str(tmp_path / "o2")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and not (tmp_path / "o2").exists()
    assert proc.stderr.strip().splitlines() == [
        f"bench_pool: error: --data {data}: expected train.csv, validation.csv and unlabeled.csv, found no "
        "unlabeled.csv; pass a folder like data/benchmarks/banking77-lt"]


# --- bench_default.py --------------------------------------------------------------------------------------------


@pytest.mark.slow  # a Trainer and two intentbal trainings through their command lines
def test_default_bench_times_the_default_against_the_trainer(tmp_path, tiny_model, fast_overrides):
    data = tmp_path / "data"
    data.mkdir()
    write_csv(data / "train.csv", toy_rows())
    write_csv(data / "validation.csv", toy_rows()[::3])
    write_csv(data / "test.csv", toy_rows()[1::3])
    md = tmp_path / "BENCH.md"
    md.write_text("# Bench\n\n<!-- default-wall:start -->\nold\n<!-- default-wall:end -->\nkept\n")
    sets = [x for o in [*fast_overrides, "train.epochs=2", "evaluate.plots=false"] for x in ("--set", o)]
    proc = subprocess.run([sys.executable, "scripts/bench_default.py", "--data", str(data), "--out",
                           str(tmp_path / "o"), "--model", str(tiny_model), "--trainer-epochs", "1", "--write", str(md),
                           *sets],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["command"] for r in runs] == ["plain Trainer", "intentbal (default)", "fp32 (a CPU without native bf16)"]
    assert runs[0]["against_trainer"] is None
    assert all(r["against_trainer"] == pytest.approx(r["seconds"] / runs[0]["seconds"], rel=0.02)
               for r in runs[1:])
    lines = (tmp_path / "o" / "train+validation.csv").read_text().count("\n")
    assert lines == 1 + len(toy_rows()) + len(toy_rows()[::3])
    config = (tmp_path / "o" / "fp32-a-cpu-without-native-bf16" / "config.yaml").read_text()
    assert "precision: fp32" in config and str(tiny_model) in config
    text = md.read_text()
    assert "old" not in text and text.endswith("<!-- default-wall:end -->\nkept\n")
    assert "| plain Trainer | 1 |" in text and "| intentbal (default) | 1 |" in text
    (data / "test.csv").unlink()
    proc = subprocess.run([sys.executable, "scripts/bench_default.py", "--data", str(data), "--out",
                           str(tmp_path / "o2")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and not (tmp_path / "o2").exists()
    assert proc.stderr.strip().splitlines() == [
        f"bench_default: error: --data {data}: expected train.csv, validation.csv and test.csv, found no test.csv; "
        "pass a folder like data/benchmarks/banking77-lt"]


# --- bench_refit.py ----------------------------------------------------------------------------------------------


def test_refit_bench_splits_validation_per_intent_and_compares_the_pair(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # it imports score, as it does when run
    bench = script("bench_refit")
    rows = [(f"{intent} text {n}", intent) for intent, count in (("a", 5), ("b", 4), ("c", 1)) for n in range(count)]
    validation = write_csv(tmp_path / "validation.csv", rows)
    first, second = bench.write_halves(validation, tmp_path / "halves", seed=3)
    a, b = read_csv(first), read_csv(second)
    assert sorted((r["text"], r["intent"]) for r in a + b) == sorted(rows), "every row once, columns kept"
    for intent, count in (("a", 5), ("b", 4), ("c", 1)):
        sizes = sorted(sum(r["intent"] == intent for r in half) for half in (a, b))
        assert sizes == [count // 2, count - count // 2], intent
    again, _ = bench.write_halves(validation, tmp_path / "again", seed=3)
    assert read_csv(again) == a, "seeded"

    def run(before: float, after: float) -> dict:
        scores = {"tail_recall": 0.5, "worst_recall": 0.0}
        return {"train only": {**scores, "macro_recall": before},
                "train + validation": {**scores, "macro_recall": after}}

    table = bench.table([run(0.80, 0.85), run(0.90, 0.88)])
    assert "| train only | 0.850 ± 0.071 | 0.500 ± 0.000 | 0.000 ± 0.000 |" in table
    assert "| difference (higher in 1 of 2 runs) | 0.015 ± 0.049 |" in table


# --- the documented commands ------------------------------------------------------------------------------------


def test_documented_commands_use_only_paths_of_a_clone():
    docs = {name: (ROOT / name).read_text(encoding="utf-8") for name in ("README.md", "BENCHMARKS.md")}
    for name, text in docs.items():
        assert "../shared" not in text, name
        # every script and shipped benchmark file named exists in the repository
        for path in set(re.findall(r"scripts/[\w./-]+\.py|data/benchmarks/banking77-lt/[\w.-]+\.\w+", text)):
            assert (ROOT / path).is_file(), f"{name} names {path}"
    assert not re.search(r"\bsessions?\b", docs["BENCHMARKS.md"], re.I)
