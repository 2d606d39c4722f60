"""SetFit: a contrastive fine-tune of a sentence encoder, then a class-balanced logistic regression.

  python scripts/setfit_baseline.py --train TRAIN.csv --test TEST.csv --out predictions.csv --model DIR
      [--iterations 5] [--epochs 1] [--batch-size 16] [--max-length 64] [--seed 0] [--threads N]

Runs in any Python with ``setfit`` (tested: setfit 1.2.0, sentence-transformers 6.3.0, transformers
5.25.0, torch 2.13.0 CPU); it imports nothing from intentbal, so ``scripts/benchmark.py
--setfit-python PYTHON`` can run it in a separate environment. --model is a sentence-transformers
folder (intentbal's embedded all-MiniLM-L6-v2: ``python -c "from intentbal.model.loading import
embedded_model_dir; print(embedded_model_dir())"``).

``SetFitModel.from_pretrained(--model)`` with a ``LogisticRegression(class_weight="balanced",
max_iter=5000)`` head, trained by SetFit's ``Trainer``: the body by its contrastive
CosineSimilarityLoss on --iterations positive and --iterations negative pairs drawn per training row
(2 * iterations * rows pairs), --epochs passes over them in batches of --batch-size, at SetFit's
usual body learning rate (2e-5) and warm-up (10%); then the head on the tuned body's embeddings. The
defaults are sized for a 2-core CPU: BANKING77-LT's 2,256 training and validation rows make
22,560 pairs, 1,410 steps. Nothing is saved but the predictions (checkpoints go to a temporary
folder).

The CSV files have the columns ``text`` and ``intent`` (or ``category``). Writes
``text,intent,prediction`` for the test rows (read by ``scripts/score.py``) and prints one JSON
line: ``train_rows``, ``pairs``, ``train_seconds``, ``predict_seconds``. Errors are one line on
stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

INTENT_COLUMNS = ("intent", "category")


class BaselineError(Exception):
    """A problem reported as one line."""


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # the trainers' progress bars, one line per step in a log
    try:
        result = run(a)
    except (BaselineError, OSError, ImportError) as exc:
        print(f"setfit_baseline: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, required=True, help="training CSV (text, intent)")
    ap.add_argument("--test", type=Path, required=True, help="CSV to predict (text, intent)")
    ap.add_argument("--out", type=Path, required=True, help="predictions CSV to write")
    ap.add_argument("--model", type=Path, required=True, help="sentence-transformers model folder")
    ap.add_argument("--iterations", type=int, default=5, help="positive (and negative) pairs drawn per row")
    ap.add_argument("--epochs", type=int, default=1, help="passes over the pairs")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's own choice)")
    return ap


def read_rows(path: Path) -> tuple[list[str], list[str]]:
    """(texts, intents) of a CSV with a ``text`` column and an ``intent`` or ``category`` one."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        column = next((c for c in INTENT_COLUMNS if c in fields), None)
        if "text" not in fields or column is None:
            found = ",".join(fields) or "no header"
            raise BaselineError(f"{path}: expected the columns text and intent, found {found}")
        rows = list(reader)
    if not rows:
        raise BaselineError(f"{path}: expected rows, found none")
    return [r["text"] for r in rows], [r[column] for r in rows]


def run(a: argparse.Namespace) -> dict[str, Any]:
    """Train on ``a.train``, predict ``a.test``, write ``a.out``; the sizes and timings."""
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    if not (a.model / "modules.json").is_file():
        raise BaselineError(f"{a.model}: expected a sentence-transformers folder (modules.json), found none")
    x_train, y_train = read_rows(a.train)
    x_test, y_test = read_rows(a.test)
    start = time.perf_counter()
    model = fit(x_train, y_train, a)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predicted = [str(p) for p in model.predict(x_test, batch_size=128)]
    predict_seconds = time.perf_counter() - start
    write_predictions(a.out, x_test, y_test, predicted)
    return {"train_rows": len(x_train), "pairs": 2 * a.iterations * len(x_train),
            "train_seconds": round(train_seconds, 1), "predict_seconds": round(predict_seconds, 1)}


def fit(texts: list[str], labels: list[str], a: argparse.Namespace) -> Any:
    """The SetFit model, its body tuned on contrastive pairs and its balanced head fitted."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(str(a.model), head_params={"class_weight": "balanced", "max_iter": 5000})
    model.model_body.max_seq_length = a.max_length
    with tempfile.TemporaryDirectory(prefix="setfit-baseline-") as scratch:
        args = TrainingArguments(output_dir=scratch, batch_size=a.batch_size, num_epochs=a.epochs,
                                 num_iterations=a.iterations, max_length=a.max_length, seed=a.seed,
                                 report_to="none", save_strategy="no", show_progress_bar=False)
        trainer = Trainer(model=model, args=args,
                          train_dataset=Dataset.from_dict({"text": texts, "label": labels}))
        trainer.train()
    return model


def write_predictions(path: Path, texts: list[str], gold: list[str], predicted: list[str]) -> None:
    """``text,intent,prediction`` rows, written to a temporary file then moved into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "intent", "prediction"])
        writer.writerows(zip(texts, gold, predicted))
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
