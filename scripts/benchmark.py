"""Quality of intentbal's recipe against the baselines, on one dataset, in one run.

  python scripts/benchmark.py --data data/benchmarks/banking77-lt --out runs/bench-b77lt \
      [--seeds 0 1 2] [--config configs/default.yaml] [--baselines hf,tfidf,frozen]
      [--anchor-rows {train+validation,train}] [--variant NAME:KEY=VALUE,KEY=VALUE ...]
      [--threads N] [--setfit-python PYTHON] [--write BENCHMARKS.md]

The dataset is a folder with train.csv, test.csv and, if it has one, validation.csv (columns
text and intent or category), or a CLINC150 JSON file (its train / val / test splits;
out-of-scope rows are left out). No recipe sees test.csv before it predicts it:

- intentbal: the config given (default: the defaults), through the path a user takes:
  ``intentbal train --train train.csv --validation validation.csv`` (so the report comes from
  its own eval hold-out and the shipped model is refit on every training and validation row), then
  ``intentbal predict`` on test.csv;
- each --variant: the same config with overrides, for ablations (e.g.
  ``no-weights:train.weighting=none``; ``refit-train:train.refit=train`` keeps the validation rows
  out of the shipped model, like-for-like with ``--anchor-rows train``).

The baselines (--baselines, comma-separated, run in the order given) train on the rows of
--anchor-rows: ``train+validation`` (the default when the dataset has a validation split: the
labelled rows the default's shipped model sees), train.csv then validation.csv concatenated into
``OUT/data/train+validation.csv``; or ``train`` (train.csv only; the default without a validation
split). They choose nothing on held-out rows; each recipe's name ends with its rows, e.g.
``frozen encoder + LR (balanced), train+validation``:

- frozen: the untouched encoder's L2-normalised mean-pooled embeddings (max length 64),
  LogisticRegression(C=10, class_weight=balanced, max_iter=5000);
- finetune: scripts/finetune_baseline.py, every layer of the encoder fine-tuned with
  class-weighted cross-entropy (AdamW 2e-4, --finetune-epochs 20, batch 32, 10% warm-up, max
  length 64), then logit adjustment with tau 1;
- hf: scripts/hf_trainer_baseline.py with the Trainer's usual settings (lr --hf-lr 5e-5,
  --hf-epochs 10, batch 32, max length 64; bf16 on a GPU);
- tfidf: word and character n-gram TF-IDF, LogisticRegression(class_weight=balanced);
- setfit: scripts/setfit_baseline.py (--setfit-iterations pairs per row, a balanced logistic
  regression head), run by --setfit-python (default: this Python), which must import setfit;
  without it the run stops before training anything.

The encoder of frozen, finetune, hf and setfit is --baseline-model (default: the all-MiniLM-L6-v2
that intentbal embeds). --threads N sets torch's threads here and OMP_NUM_THREADS /
MKL_NUM_THREADS for every subprocess.

Each recipe and seed writes ``OUT/RECIPE/seedN/predictions.csv`` (with intent and prediction columns)
and is scored by scripts/score.py, with training counts from train.csv for every recipe (so the
tail and the count buckets hold the same intents in every row); intentbal's recipes are also
scored on validation (macro recall), the only column to choose a recipe by, unless the shipped
model trained on it (the default ``train.refit: all``). ``OUT/results.json`` holds every score and
``OUT/table.md`` the tables (mean and spread over seeds): the measures, then the mean recall of
the intents in each training-count bucket (2-4, 5-9, 10-29, 30+). With --write the tables replace
this dataset's section of the Markdown file.
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
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
BASELINE = SCRIPTS / "hf_trainer_baseline.py"
FINETUNE = SCRIPTS / "finetune_baseline.py"
SETFIT = SCRIPTS / "setfit_baseline.py"
SCORER = SCRIPTS / "score.py"
METRICS = ("accuracy", "macro_f1", "tail_recall", "worst_recall", "below_50")
BUCKETS = ("2-4", "5-9", "10-29", "30+")  # scripts/score.py's recall_by_count
ANCHOR_ROWS = ("train+validation", "train")
# --baselines name -> the recipe's name in the table (before ", ROWS")
BASELINES = {"frozen": "frozen encoder + LR (balanced)",
             "finetune": "fine-tune every layer (weighted CE, logit adjustment)",
             "hf": "HF Trainer (plain)",
             "tfidf": "TF-IDF + LR (balanced)",
             "setfit": "SetFit (balanced LR head)"}
Rows = tuple[list[str], list[str]]
Recipe = Callable[[Path, int], None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="dataset folder or CLINC150 JSON file")
    ap.add_argument("--out", type=Path, required=True, help="folder for predictions, scores and the table")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--config", type=Path, help="intentbal config (default: the defaults)")
    ap.add_argument("--baselines", default="hf,tfidf,frozen",
                    help=f"comma-separated, some of {','.join(BASELINES)}; '' for none")
    ap.add_argument("--anchor-rows", choices=ANCHOR_ROWS,
                    help="the rows the baselines train on (default: train+validation when the dataset has a "
                         "validation split, else train)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                    help="an intentbal recipe with config overrides (repeatable)")
    ap.add_argument("--no-default", action="store_true", help="skip the unmodified intentbal recipe")
    ap.add_argument("--skip-done", action="store_true",
                    help="keep the scores already in OUT/results.json and run only what is missing")
    ap.add_argument("--baseline-model", type=Path,
                    help="encoder folder of the frozen, finetune, hf and setfit baselines (default: the embedded "
                         "all-MiniLM-L6-v2)")
    ap.add_argument("--hf-epochs", type=float, default=10, help="epochs of the Trainer baseline (its usual 10)")
    ap.add_argument("--hf-lr", type=float, default=5e-5, help="learning rate of the Trainer baseline (its usual 5e-5)")
    ap.add_argument("--finetune-epochs", type=int, default=20, help="epochs of the finetune baseline")
    ap.add_argument("--setfit-python", default=sys.executable,
                    help="the Python that runs the setfit baseline (default: this one)")
    ap.add_argument("--setfit-iterations", type=int, default=5,
                    help="SetFit's pairs per training row (positive and negative each)")
    ap.add_argument("--threads", type=int, help="CPU threads of torch here and in every subprocess")
    ap.add_argument("--write", type=Path, help="Markdown file whose section for this dataset is replaced")
    a = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if a.threads:
        set_threads(a.threads)
    baselines = baseline_names(a.baselines)
    if "setfit" in baselines:
        check_setfit(a.setfit_python)
    train, validation, test = read_dataset(a.data)
    paths = write_splits(a.out / "data", train=train, validation=validation, test=test)
    rows = anchor_rows(a.anchor_rows, has_validation="validation" in paths)
    paths["anchor"] = anchor_training(paths, rows)
    counts_path = paths["train"]
    recipes = recipes_to_run(a, paths, baselines, rows)
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


# --- what intentbal provides (one helper per name, so a reorganised package is re-pointed in one place) -----


def _load_intents(path: Path, split: str) -> Rows:
    """(texts, intents) of ``path`` (``PATH#SPLIT`` for a split of a JSON file), read as intentbal reads it."""
    from intentbal import load_intents

    d = load_intents(path, split=split)
    return list(d.texts), list(d.intents)


def _intent_classifier(model_dir: Path):
    """A trained intentbal model, loaded for prediction."""
    from intentbal import IntentClassifier

    return IntentClassifier.load(model_dir)


def _embedded_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder that intentbal embeds (not a public name of intentbal)."""
    from intentbal.model.loading import embedded_model_dir

    return embedded_model_dir()


# --- the recipes -------------------------------------------------------------------------------------------------


def baseline_names(spec: str) -> list[str]:
    """The --baselines names, in the order given, checked."""
    names = [b.strip() for b in spec.split(",") if b.strip()]
    for b in names:
        if b not in BASELINES:
            raise SystemExit(f"benchmark: error: --baselines: expected some of {', '.join(BASELINES)}, found {b!r}")
    return names


def recipe_name(baseline: str, rows: str) -> str:
    """The table's name of a baseline trained on ``rows``, e.g. ``frozen encoder + LR (balanced), train``."""
    return f"{BASELINES[baseline]}, {rows}"


def recipes_to_run(a: argparse.Namespace, paths: dict[str, Path], baselines: list[str],
                   rows: str) -> dict[str, Recipe]:
    """Recipe name -> a function training and writing ``folder/predictions.csv``; the baselines
    train on ``paths["anchor"]`` (the rows named ``rows``)."""
    recipes: dict[str, Recipe] = {}
    if not a.no_default:
        recipes["intentbal"] = lambda folder, seed: run_intentbal(a.config, [], paths, folder, seed)
    for spec in a.variant:
        name, _, sets = spec.partition(":")
        overrides = [s for s in sets.split(",") if s]
        recipes[f"intentbal {name}"] = (lambda o: lambda folder, seed: run_intentbal(a.config, o, paths, folder, seed))(
            overrides)
    train, test = paths["anchor"], paths["test"]
    model = a.baseline_model
    threads = a.threads
    runs: dict[str, Recipe] = {
        "frozen": lambda folder, seed: run_frozen(train, test, folder, seed, model=model),
        "finetune": lambda folder, seed: run_finetune(train, test, folder, seed, model=model,
                                                      epochs=a.finetune_epochs, threads=threads),
        "hf": lambda folder, seed: run_hf(train, test, folder, seed, epochs=a.hf_epochs, lr=a.hf_lr, model=model),
        "tfidf": lambda folder, seed: run_tfidf(train, test, folder, seed),
        "setfit": lambda folder, seed: run_setfit(train, test, folder, seed, python=a.setfit_python, model=model,
                                                  iterations=a.setfit_iterations, threads=threads),
    }
    for b in baselines:
        recipes[recipe_name(b, rows)] = runs[b]
    return recipes


def anchor_rows(requested: str | None, *, has_validation: bool) -> str:
    """The --anchor-rows in force: the one requested, else train+validation when there is a validation split."""
    if requested is None:
        return "train+validation" if has_validation else "train"
    if requested == "train+validation" and not has_validation:
        raise SystemExit("benchmark: error: --anchor-rows train+validation: expected a validation split in --data, "
                         "found none; pass --anchor-rows train")
    return requested


def anchor_training(paths: dict[str, Path], rows: str) -> Path:
    """The training CSV of the baselines: train.csv for ``train``; for ``train+validation``, train.csv's
    rows then validation.csv's, written beside them as train+validation.csv."""
    if rows == "train":
        return paths["train"]
    texts, intents = read_rows(paths["train"])
    more_texts, more_intents = read_rows(paths["validation"])
    path = paths["train"].with_name("train+validation.csv")
    write_rows(path, ["text", "intent"], zip(texts + more_texts, intents + more_intents))
    return path


def read_dataset(data: Path) -> tuple[Rows, Rows | None, Rows]:
    """(train, validation, test) as (texts, intents); validation is None when the folder has no
    validation.csv (intentbal then holds its own out of train). CLINC150 out-of-scope rows are dropped."""
    if data.is_dir():
        parts = {s: data / f"{s}.csv" for s in ("train", "validation", "test")}
        if not parts["validation"].is_file():
            del parts["validation"]
    else:
        parts = {s: Path(f"{data}#{name}") for s, name in (("train", "train"), ("validation", "val"), ("test", "test"))}
    out: dict[str, Rows] = {}
    for split, path in parts.items():
        texts, intents = _load_intents(path, split)
        keep = [i for i, intent in enumerate(intents) if intent != "oos"]
        out[split] = ([texts[i] for i in keep], [intents[i] for i in keep])
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


def write_rows(path: Path, header: list[str], rows: Iterable) -> None:
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


def set_threads(n: int) -> None:
    """``n`` CPU threads for torch here and, through the environment, in every subprocess."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    import torch

    torch.set_num_threads(n)


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
    texts, intents = read_rows(validation)
    predicted, _ = _intent_classifier(model_dir).predict(texts)
    return round(macro_recall(predicted, intents), 4)


def macro_recall(predicted: list[str], gold: list[str]) -> float:
    """The unweighted mean over the gold intents of the share of their rows predicted right."""
    hits: dict[str, list[bool]] = {}
    for p, g in zip(predicted, gold):
        hits.setdefault(g, []).append(p == g)
    return statistics.mean(sum(v) / len(v) for v in hits.values())


def run_hf(train: Path, test: Path, folder: Path, seed: int, *, epochs: float, lr: float,
           model: Path | None = None) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(BASELINE), "--train", str(train), "--test", str(test),
           "--model", str(model or _embedded_model_dir()), "--out", str(folder / "predictions.csv"),
           "--seed", str(seed), "--epochs", str(epochs), "--lr", str(lr), "--batch-size", "32", "--max-length", "64"]
    if torch.cuda.is_available():
        cmd.append("--bf16")
    subprocess.run(cmd, check=True)


def run_finetune(train: Path, test: Path, folder: Path, seed: int, *, epochs: int = 20,
                 model: Path | None = None, threads: int | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(FINETUNE), "--train", str(train), "--test", str(test),
           "--model", str(model or _embedded_model_dir()), "--out", str(folder / "predictions.csv"),
           "--seed", str(seed), "--epochs", str(epochs), "--lr", "2e-4", "--batch-size", "32", "--warmup", "0.1",
           "--max-length", "64", "--tau", "1.0", *(["--threads", str(threads)] if threads else [])]
    subprocess.run(cmd, check=True)


def check_setfit(python: str) -> None:
    """Stop with one line unless ``python`` imports setfit."""
    try:
        proc = subprocess.run([python, "-c", "import setfit"], capture_output=True, text=True, timeout=300)
    except OSError as exc:
        raise SystemExit(f"benchmark: error: --baselines setfit: cannot run --setfit-python {python}: {exc}") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise SystemExit(f"benchmark: error: --baselines setfit: {python} cannot import setfit "
                         f"({lines[-1] if lines else f'exit status {proc.returncode}'}); pip install setfit==1.2.0 "
                         "there, or pass --setfit-python with a Python that has it")


def run_setfit(train: Path, test: Path, folder: Path, seed: int, *, python: str, iterations: int = 5,
               model: Path | None = None, threads: int | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [python, str(SETFIT), "--train", str(train), "--test", str(test),
           "--model", str(model or _embedded_model_dir()), "--out", str(folder / "predictions.csv"),
           "--seed", str(seed), "--iterations", str(iterations), "--max-length", "64",
           *(["--threads", str(threads)] if threads else [])]
    subprocess.run(cmd, check=True)


def run_tfidf(train: Path, test: Path, folder: Path, seed: int) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    (x, y), (tx, ty) = read_rows(train), read_rows(test)
    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True))
    model = make_pipeline(features, LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed))
    model.fit(x, y)
    write_rows(folder / "predictions.csv", ["text", "intent", "prediction"], zip(tx, ty, model.predict(tx)))


def run_frozen(train: Path, test: Path, folder: Path, seed: int, *, model: Path | None = None) -> None:
    from sklearn.linear_model import LogisticRegression

    (x, y), (tx, ty) = read_rows(train), read_rows(test)
    encoder = model or _embedded_model_dir()
    classifier = LogisticRegression(C=10, class_weight="balanced", max_iter=5000, random_state=seed)
    classifier.fit(mean_pooled(x, encoder), y)
    write_rows(folder / "predictions.csv", ["text", "intent", "prediction"],
               zip(tx, ty, classifier.predict(mean_pooled(tx, encoder))))


def mean_pooled(texts: list[str], model_dir: Path):
    """L2-normalised mean-pooled embeddings of the untouched encoder in ``model_dir`` (max length 64)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok, enc = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir)
    enc.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), 128):
            batch = tok(texts[i:i + 128], truncation=True, max_length=64, padding=True, return_tensors="pt")
            hidden = enc(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
    return torch.cat(out).numpy()


# --- scores and tables -------------------------------------------------------------------------------------------


def score(predictions: Path, counts: Path) -> dict:
    spec = importlib.util.spec_from_file_location("score", SCORER)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{SCORER}: expected the benchmark scorer, found none")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score(predictions, counts)


def markdown(results: dict, *, order: list[str], title: str, command: str) -> str:
    """The measures table, then (when any run has them) the recall-by-training-count table."""
    names = [n for n in order + [n for n in results if n not in order] if results.get(n)]
    lines = [f"### {title}", "",
             f"`{command}` -- {dt.date.today().isoformat()}, {platform.node() or 'this machine'}, "
             f"{_device()}; scored by scripts/score.py on the test split.", "",
             "| recipe | seeds | validation macro recall | accuracy | macro-F1 | tail recall | worst | <50% "
             "| minutes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in names:
        runs = list(results[name].values())
        val = [r["validation_macro_recall"] for r in runs if "validation_macro_recall" in r]
        cells = [_spread(val, digits=3) if len(val) == len(runs) else "-"]
        count_digits = 0 if len(runs) == 1 else 1  # a mean count of intents under 50% keeps one decimal
        cells += [_spread([r[m] for r in runs], digits=count_digits if m == "below_50" else 3) for m in METRICS]
        minutes = statistics.mean(r.get("seconds", 0) for r in runs) / 60
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + f" | {minutes:.1f} |")
    buckets = bucket_table(results, names)
    return "\n".join(lines) + "\n" + ("\n" + buckets if buckets else "")


def bucket_table(results: dict, names: list[str]) -> str:
    """Mean recall of the intents in each training-count bucket (mean ± sd over seeds; '-' where a
    bucket holds no intent or a run has no bucket scores); '' when no run has them."""
    sizes = next((r["recall_by_count"] for n in names for r in results[n].values() if "recall_by_count" in r), None)
    if sizes is None:
        return ""
    header = " | ".join(f"{b} ({sizes[b]['intents']} intents)" for b in BUCKETS)
    lines = ["Recall by training count (train.csv): mean recall of the intents with that many training examples.", "",
             f"| recipe | seeds | {header} |", "| --- | --- |" + " --- |" * len(BUCKETS)]
    for name in names:
        runs = list(results[name].values())
        cells = []
        for b in BUCKETS:
            values = [r["recall_by_count"][b]["recall"] for r in runs if "recall_by_count" in r]
            ok = len(values) == len(runs) and all(v is not None for v in values)
            cells.append(_spread(values, digits=3) if ok else "-")
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _spread(values: list[float], *, digits: int) -> str:
    mean = statistics.mean(values)
    text = f"{mean:.{digits}f}"
    return text if len(values) == 1 else f"{text} ± {statistics.stdev(values):.{digits}f}"


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    threads = f", {torch.get_num_threads()} torch threads" if torch.get_num_threads() != os.cpu_count() else ""
    return f"CPU, {os.cpu_count()} cores{threads}"


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
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=2), encoding="utf-8")
    tmp.replace(out / "results.json")


if __name__ == "__main__":
    main()
