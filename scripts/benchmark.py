"""Quality of intentbal's recipe against the baselines, on one dataset, in one run.

  python scripts/benchmark.py --data data/benchmarks/banking77-lt --out runs/bench-b77lt \
      [--seeds 0 1 2] [--config configs/default.yaml] [--baselines hf,tfidf,frozen]
      [--variant NAME:KEY=VALUE,KEY=VALUE ...] [--write BENCHMARKS.md]

The dataset is a folder with train.csv, test.csv and, if it has one, validation.csv (columns
text and intent or category), or a CLINC150 JSON file (its train / val / test splits;
out-of-scope rows are left out).
Every recipe trains on train, may choose settings on validation only, and predicts test:

- intentbal: the config given (default: the defaults), through the path a user takes:
  ``intentbal train --train train.csv --validation validation.csv`` (so the report comes from
  its own eval hold-out and the shipped model is refit on every training and validation row), then
  ``intentbal predict`` on test.csv;
- each --variant: the same config with overrides, for ablations (e.g.
  ``no-weights:train.weighting=none``);
- hf: scripts/hf_trainer_baseline.py with the Trainer's usual settings (lr --hf-lr 5e-5, --hf-epochs 10,
  batch 32, max length 64; bf16 on a GPU);
- tfidf: word and character n-gram TF-IDF, logistic regression, class_weight=balanced;
- frozen: the untouched encoder's mean-pooled embeddings, logistic regression, balanced.

Each recipe and seed writes ``OUT/RECIPE/seedN/predictions.csv`` (with intent and prediction columns)
and is scored by scripts/score.py; intentbal's recipes are also scored on validation
(macro recall), the only column to choose a recipe by, unless the shipped model trained on it
(the default ``train.refit: all``; ``--variant "NAME:train.refit=train"`` keeps it out).
``OUT/results.json`` holds every score and ``OUT/table.md`` the table (mean and spread over
seeds); with --write the table replaces this dataset's section of the Markdown file.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scripts" / "hf_trainer_baseline.py"
SCORER = ROOT / "scripts" / "score.py"
METRICS = ("accuracy", "macro_f1", "tail_recall", "worst_recall", "below_50")
Rows = tuple[list[str], list[str]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="dataset folder or CLINC150 JSON file")
    ap.add_argument("--out", type=Path, required=True, help="folder for predictions, scores and the table")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--config", type=Path, help="intentbal config (default: the defaults)")
    ap.add_argument("--baselines", default="hf,tfidf,frozen", help="comma-separated; '' for none")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                    help="an intentbal recipe with config overrides (repeatable)")
    ap.add_argument("--no-default", action="store_true", help="skip the unmodified intentbal recipe")
    ap.add_argument("--skip-done", action="store_true",
                    help="keep the scores already in OUT/results.json and run only what is missing")
    ap.add_argument("--hf-epochs", type=float, default=10, help="epochs of the Trainer baseline (its usual 10)")
    ap.add_argument("--hf-lr", type=float, default=5e-5, help="learning rate of the Trainer baseline (its usual 5e-5)")
    ap.add_argument("--write", type=Path, help="Markdown file whose section for this dataset is replaced")
    a = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    split_dir = a.out / "data"
    train, validation, test = read_dataset(a.data)
    paths = write_splits(split_dir, train=train, validation=validation, test=test)
    counts_path = paths["train"]
    recipes = recipes_to_run(a, paths)
    results = _load_results(a.out)
    for name, run in recipes.items():
        for seed in a.seeds:
            if a.skip_done and str(seed) in results.get(name, {}):
                continue
            folder = a.out / name / f"seed{seed}"
            start = time.perf_counter()
            run(folder, seed)
            scored = score(folder / "predictions.csv", counts_path)
            run_dir = folder / "run"
            if (run_dir / "model").is_dir() and "validation" in paths and not trained_on_validation(run_dir):
                scored["validation_macro_recall"] = validation_macro_recall(run_dir / "model", paths["validation"])
            scored["seconds"] = round(time.perf_counter() - start, 1)
            results.setdefault(name, {})[str(seed)] = scored
            _save_results(a.out, results)
            print(json.dumps({"recipe": name, "seed": seed, **scored}), flush=True)
    shown = {name: results[name] for name in recipes if name in results}
    table = markdown(shown, order=list(recipes), title=dataset_name(a.data), command=" ".join(sys.argv))
    (a.out / "table.md").write_text(table, encoding="utf-8")
    print(table)
    if a.write:
        replace_section(a.write, dataset_name(a.data), table)


def recipes_to_run(a: argparse.Namespace, paths: dict[str, Path]) -> dict[str, Callable[[Path, int], None]]:
    """Recipe name -> a function training on ``paths`` and writing ``folder/predictions.csv``."""
    recipes: dict[str, Callable[[Path, int], None]] = {}
    if not a.no_default:
        recipes["intentbal"] = lambda folder, seed: run_intentbal(a.config, [], paths, folder, seed)
    for spec in a.variant:
        name, _, sets = spec.partition(":")
        overrides = [s for s in sets.split(",") if s]
        recipes[f"intentbal {name}"] = (lambda o: lambda folder, seed: run_intentbal(a.config, o, paths, folder, seed))(
            overrides)
    baselines = {"hf": lambda folder, seed: run_hf(paths, folder, seed, epochs=a.hf_epochs, lr=a.hf_lr),
                 "tfidf": lambda folder, seed: run_tfidf(paths, folder, seed),
                 "frozen": lambda folder, seed: run_frozen(paths, folder, seed)}
    for b in filter(None, a.baselines.split(",")):
        if b not in baselines:
            raise SystemExit(f"--baselines: expected some of {', '.join(baselines)}, found {b!r}")
        recipes[{"hf": "HF Trainer (plain)", "tfidf": "TF-IDF + LR (balanced)",
                 "frozen": "frozen encoder + LR (balanced)"}[b]] = baselines[b]
    return recipes


def read_dataset(data: Path) -> tuple[Rows, Rows | None, Rows]:
    """(train, validation, test) as (texts, intents); validation is None when the folder has no
    validation.csv (intentbal then holds its own out of train). CLINC150 out-of-scope rows are dropped."""
    from intentbal.config import Config
    from intentbal.jobs.inputs import load_data

    config = Config()
    if data.is_dir():
        parts = {s: data / f"{s}.csv" for s in ("train", "validation", "test")}
        if not parts["validation"].is_file():
            del parts["validation"]
    else:
        parts = {s: Path(f"{data}#{name}") for s, name in (("train", "train"), ("validation", "val"), ("test", "test"))}
    out: dict[str, Rows] = {}
    for split, path in parts.items():
        d = load_data(config, path, split)
        keep = [i for i, intent in enumerate(d.intents) if intent != "oos"]
        out[split] = ([d.texts[i] for i in keep], [d.intents[i] for i in keep])
    return out["train"], out.get("validation"), out["test"]


def write_splits(folder: Path, **splits: Rows | None) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in splits.items():
        if rows is None:
            continue
        texts, intents = rows
        paths[name] = folder / f"{name}.csv"
        write_rows(paths[name], ["text", "intent"], zip(texts, intents))
    return paths


def write_rows(path: Path, header: list[str], rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    tmp.replace(path)


def read_rows(path: Path) -> Rows:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["intent"] for r in rows]


def run_intentbal(config_path: Path | None, overrides: list[str], paths: dict[str, Path],
                  folder: Path, seed: int) -> None:
    """The path a user takes: ``intentbal train`` on train (and validation, when the dataset has
    it; the test split never reaches it), then ``intentbal predict`` on test."""
    cli = [sys.executable, "-m", "intentbal.cli"]
    sets = [arg for item in [*overrides, f"seed={seed}", "evaluate.plots=false"] for arg in ("--set", item)]
    config = ["--config", str(config_path)] if config_path else []
    validation = ["--validation", str(paths["validation"])] if "validation" in paths else []
    subprocess.run([*cli, "train", "--train", str(paths["train"]), *validation, "--output", str(folder / "run"),
                    *config, *sets], check=True)
    subprocess.run([*cli, "predict", "--model", str(folder / "run" / "model"), "--input", str(paths["test"]),
                    "--output", str(folder / "predictions.csv"), "--overwrite", *config], check=True)


def trained_on_validation(run_dir: Path) -> bool:
    """Whether the shipped model was refit on the validation file's rows too (``train.refit`` "all"):
    then its score there says nothing, and the table shows none."""
    report = run_dir / "report.json"
    refit = json.loads(report.read_text())["summary"].get("refit") if report.is_file() else None
    return bool(refit and refit.get("validation_rows"))


def validation_macro_recall(model_dir: Path, validation: Path) -> float:
    """Macro recall of a trained intentbal model on the validation split: the column to choose by."""
    from intentbal.adjust import macro_recall
    from intentbal.predict import IntentClassifier

    texts, intents = read_rows(validation)
    predicted, _ = IntentClassifier.load(model_dir).predict(texts)
    return round(macro_recall(predicted, intents), 4)


def run_hf(paths: dict[str, Path], folder: Path, seed: int, *, epochs: float, lr: float) -> None:
    import torch

    from intentbal.loading import embedded_model_dir

    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(BASELINE), "--train", str(paths["train"]), "--test", str(paths["test"]),
           "--model", str(embedded_model_dir()), "--out", str(folder / "predictions.csv"), "--seed", str(seed),
           "--epochs", str(epochs), "--lr", str(lr), "--batch-size", "32", "--max-length", "64"]
    if torch.cuda.is_available():
        cmd.append("--bf16")
    subprocess.run(cmd, check=True)


def run_tfidf(paths: dict[str, Path], folder: Path, seed: int) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    (x, y), (tx, ty) = read_rows(paths["train"]), read_rows(paths["test"])
    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True))
    model = make_pipeline(features, LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed))
    model.fit(x, y)
    write_rows(folder / "predictions.csv", ["text", "intent", "prediction"], zip(tx, ty, model.predict(tx)))


def run_frozen(paths: dict[str, Path], folder: Path, seed: int) -> None:
    from sklearn.linear_model import LogisticRegression

    (x, y), (tx, ty) = read_rows(paths["train"]), read_rows(paths["test"])
    model = LogisticRegression(class_weight="balanced", max_iter=3000, random_state=seed)
    model.fit(mean_pooled(x), y)
    write_rows(folder / "predictions.csv", ["text", "intent", "prediction"],
               zip(tx, ty, model.predict(mean_pooled(tx))))


def mean_pooled(texts: list[str]):
    """L2-normalised mean-pooled embeddings of the untouched default encoder."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from intentbal.loading import embedded_model_dir

    tok, enc = AutoTokenizer.from_pretrained(embedded_model_dir()), AutoModel.from_pretrained(embedded_model_dir())
    enc.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), 128):
            batch = tok(texts[i:i + 128], truncation=True, max_length=64, padding=True, return_tensors="pt")
            hidden = enc(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
    return torch.cat(out).numpy()


def score(predictions: Path, counts: Path) -> dict:
    spec = importlib.util.spec_from_file_location("score", SCORER)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{SCORER}: expected the benchmark scorer, found none")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score(predictions, counts)


def markdown(results: dict, *, order: list[str], title: str, command: str) -> str:
    lines = [f"### {title}", "",
             f"`{command}` -- {dt.date.today().isoformat()}, {platform.node() or 'this machine'}, "
             f"{_device()}; scored by scripts/score.py on the test split.", "",
             "| recipe | seeds | validation macro recall | accuracy | macro-F1 | tail recall | worst | <50% "
             "| minutes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in order + [n for n in results if n not in order]:
        runs = list(results.get(name, {}).values())
        if not runs:
            continue
        val = [r["validation_macro_recall"] for r in runs if "validation_macro_recall" in r]
        cells = [_spread(val, digits=3) if len(val) == len(runs) else "-"]
        count_digits = 0 if len(runs) == 1 else 1  # a mean count of intents under 50% keeps one decimal
        cells += [_spread([r[m] for r in runs], digits=count_digits if m == "below_50" else 3) for m in METRICS]
        minutes = statistics.mean(r.get("seconds", 0) for r in runs) / 60
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + f" | {minutes:.1f} |")
    return "\n".join(lines) + "\n"


def _spread(values: list[float], *, digits: int) -> str:
    mean = statistics.mean(values)
    text = f"{mean:.{digits}f}"
    return text if len(values) == 1 else f"{text} ± {statistics.stdev(values):.{digits}f}"


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU, {os.cpu_count()} cores"


def dataset_name(data: Path) -> str:
    return data.stem if data.is_file() else data.name


def replace_section(path: Path, name: str, table: str) -> None:
    """Replace (or append) the block between this dataset's quality markers in ``path``."""
    begin, end = f"<!-- quality:{name} -->", f"<!-- /quality:{name} -->"
    block = f"{begin}\n{table}{end}"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _load_results(out: Path) -> dict:
    path = out / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _save_results(out: Path, results: dict) -> None:
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=2), encoding="utf-8")
    tmp.replace(out / "results.json")


if __name__ == "__main__":
    main()
