"""The plain Hugging Face Trainer fine-tune: the path a user takes without intentbal.

  python scripts/hf_trainer_baseline.py --train TRAIN.csv --test TEST.csv --out predictions.csv
      [--model DIR] [--epochs N] [--batch-size N] [--lr X] [--max-length N] [--seed N] [--bf16]

``AutoModelForSequenceClassification`` on the model (default: the all-MiniLM-L6-v2 that
intentbal embeds), trained by ``Trainer`` with plain cross-entropy: no class weights, no
augmentation, no logit adjustment, the Trainer's own optimiser, schedule and shuffling. Model,
epochs, batch size, learning rate and max length default to those of intentbal's default
recipe (``intentbal/config.py``), so the two differ only in what intentbal adds; pass the
Trainer's usual ``--lr 5e-5 --epochs 10`` for the baseline the anchors measured
(``scripts/benchmark.py --baselines hf`` does).

The CSV files have the columns ``text`` and ``intent`` (or ``category``). Writes
``text,prediction,confidence,intent`` for the test rows (the layout of intentbal's
``predictions.csv``, read by ``scripts/score.py``) and prints one JSON line: ``train_seconds``,
``train_samples_per_second`` (the Trainer's, over the whole run), ``steady_samples_per_second``
(the whole epochs after the first; null with fewer than two), ``predict_samples_per_second``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

INTENT_COLUMNS = ("intent", "category")


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    try:
        import accelerate  # noqa: F401  (the Trainer needs it; intentbal itself does not)
    except ImportError:
        print("hf_trainer_baseline.py: error: the Trainer needs accelerate, which is not installed; "
              "install it with: pip install 'intentbal[bench]'", file=sys.stderr)
        return 2
    if a.model is None:
        from intentbal.model.loading import embedded_model_dir

        a.model = str(embedded_model_dir())
    result = run(a)
    print(json.dumps(result))
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line, its defaults taken from intentbal's default recipe."""
    from intentbal.config import Config

    recipe = Config()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="predictions CSV to write")
    ap.add_argument("--model", help="model folder or Hub name (default: the embedded all-MiniLM-L6-v2)")
    ap.add_argument("--epochs", type=float, default=recipe.train.epochs)
    ap.add_argument("--batch-size", type=int, default=recipe.train.batch_size)
    ap.add_argument("--lr", type=float, default=recipe.train.learning_rate)
    ap.add_argument("--max-length", type=int, default=recipe.model.max_length)
    ap.add_argument("--seed", type=int, default=recipe.seed)
    ap.add_argument("--bf16", action="store_true", help="bf16 mixed precision (a GPU)")
    return ap


def read_rows(path: Path) -> tuple[list[str], list[str]]:
    """(texts, intents) of a CSV with a ``text`` column and an ``intent`` or ``category`` one."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        column = next((c for c in INTENT_COLUMNS if c in fields), None)
        if "text" not in fields or column is None:
            raise SystemExit(f"hf_trainer_baseline: error: {path}: expected the columns text and intent, "
                             f"found {','.join(fields) or 'no header'}")
        rows = list(reader)
    return [r["text"] for r in rows], [r[column] for r in rows]


def run(a: argparse.Namespace) -> dict[str, float | None]:
    """Train, predict ``a.test``, write ``a.out``; the timings."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    x_train, y_train = read_rows(a.train)
    x_test, y_test = read_rows(a.test)
    intents = sorted(set(y_train))
    intent_id = {intent: i for i, intent in enumerate(intents)}
    set_seed(a.seed)  # before the model, so the new classifier layer starts the same every run
    tokenizer = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(
        a.model, num_labels=len(intents), id2label=dict(enumerate(intents)), label2id=intent_id)
    # "labels" is the Trainer's name for the targets
    train = [dict(tokenizer(x, truncation=True, max_length=a.max_length), labels=intent_id[y])
             for x, y in zip(x_train, y_train)]
    with tempfile.TemporaryDirectory(prefix="hf-trainer-baseline-") as scratch:
        args = TrainingArguments(
            output_dir=scratch, num_train_epochs=a.epochs, learning_rate=a.lr,
            per_device_train_batch_size=a.batch_size, seed=a.seed, bf16=a.bf16,
            save_strategy="no", logging_strategy="no", report_to=[], disable_tqdm=True)
        clock = epoch_clock()
        trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer),
                          callbacks=[clock])
        metrics = trainer.train().metrics

    model.eval()
    device = next(model.parameters()).device
    predicted, confidence = [], []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(x_test), 128):
            batch = tokenizer(x_test[i:i + 128], truncation=True, max_length=a.max_length, padding=True,
                              return_tensors="pt").to(device)
            probabilities = model(**batch).logits.float().softmax(-1)
            best = probabilities.max(-1)
            predicted += best.indices.tolist()
            confidence += best.values.tolist()
    predict_seconds = time.perf_counter() - start
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_name(a.out.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "prediction", "confidence", "intent"])
        writer.writerows((x, intents[p], f"{c:.6f}", y) for x, p, c, y in zip(x_test, predicted, confidence, y_test))
    tmp.replace(a.out)
    ends = clock.ends
    steady = len(train) * (len(ends) - 1) / (ends[-1] - ends[0]) if len(ends) > 1 else None
    return {"train_seconds": round(metrics["train_runtime"], 2),
            "train_samples_per_second": round(metrics["train_samples_per_second"], 2),
            "steady_samples_per_second": None if steady is None else round(steady, 2),
            "predict_samples_per_second": round(len(x_test) / max(predict_seconds, 1e-9), 2)}


def epoch_clock() -> Any:
    """A Trainer callback that notes when each epoch's work is done (on a GPU, after waiting for it) in ``ends``."""
    import torch
    from transformers import TrainerCallback

    class EpochClock(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.ends.append(time.perf_counter())

    return EpochClock()


if __name__ == "__main__":
    sys.exit(main())
