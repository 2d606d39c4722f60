"""A plain PyTorch fine-tune of every layer, class-weighted, with post-hoc logit adjustment: the
strongest common recipe without intentbal.

  python scripts/finetune_baseline.py --train TRAIN.csv --test TEST.csv --out predictions.csv
      [--model DIR] [--epochs 20] [--batch-size 32] [--lr 2e-4] [--warmup 0.1] [--max-length 64]
      [--tau 1.0] [--seed 0] [--threads N]

``AutoModelForSequenceClassification`` on the model (default: the all-MiniLM-L6-v2 that intentbal
embeds; for a BERT-family encoder its head is the pooler over [CLS] and a new linear layer), every
parameter trained (embeddings, every encoder layer, the pooler and the head), in train mode (the
model's own dropout):

- AdamW (torch's, weight decay 0.01) at --lr with transformers' ``get_linear_schedule_with_warmup``:
  a linear warm-up over the first --warmup share of the steps, then a linear decay to 0; --epochs
  passes over the rows, shuffled by a generator seeded with --seed, in batches of --batch-size
  padded to their longest row (at most --max-length tokens);
- cross-entropy weighted by inverse class frequency, w_c = N / (K * n_c) for K intents with n_c of
  the N training rows (so sum_c w_c * n_c = N);
- at prediction, post-hoc logit adjustment: the predicted intent is the argmax of
  ``logits - tau * log(prior)``, prior_c = n_c / N. tau is fixed (default 1): no held-out rows
  remain to choose it when every labelled row trains.

The CSV files have the columns ``text`` and ``intent`` (or ``category``). Writes
``text,intent,prediction`` for the test rows (read by ``scripts/score.py``) and prints one JSON
line: ``train_rows``, ``intents``, ``train_seconds``, ``epoch_seconds`` (one per epoch),
``predict_seconds``. Errors are one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INTENT_COLUMNS = ("intent", "category")


class BaselineError(Exception):
    """A problem reported as one line."""


@dataclass
class Settings:
    """The fine-tune's settings (the command line's defaults)."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-4
    warmup: float = 0.1
    max_length: int = 64
    tau: float = 1.0
    seed: int = 0


@dataclass
class Fitted:
    """A fine-tuned model, its tokenizer, its intents (label order), their training prior and the
    seconds each epoch took."""

    model: Any
    tokenizer: Any
    intents: list[str]
    prior: list[float]
    epoch_seconds: list[float] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    try:
        result = run(a)
    except (BaselineError, OSError) as exc:
        print(f"finetune_baseline: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def parser() -> argparse.ArgumentParser:
    defaults = Settings()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, required=True, help="training CSV (text, intent)")
    ap.add_argument("--test", type=Path, required=True, help="CSV to predict (text, intent)")
    ap.add_argument("--out", type=Path, required=True, help="predictions CSV to write")
    ap.add_argument("--model", help="model folder (default: the embedded all-MiniLM-L6-v2)")
    ap.add_argument("--epochs", type=int, default=defaults.epochs)
    ap.add_argument("--batch-size", type=int, default=defaults.batch_size)
    ap.add_argument("--lr", type=float, default=defaults.lr)
    ap.add_argument("--warmup", type=float, default=defaults.warmup, help="share of the steps warming up")
    ap.add_argument("--max-length", type=int, default=defaults.max_length)
    ap.add_argument("--tau", type=float, default=defaults.tau, help="logit adjustment strength")
    ap.add_argument("--seed", type=int, default=defaults.seed)
    ap.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's own choice)")
    return ap


def run(a: argparse.Namespace) -> dict[str, Any]:
    """Train on ``a.train``, predict ``a.test``, write ``a.out``; the timings."""
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    settings = Settings(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, warmup=a.warmup,
                        max_length=a.max_length, tau=a.tau, seed=a.seed)
    x_train, y_train = read_rows(a.train)
    x_test, y_test = read_rows(a.test)
    start = time.perf_counter()
    fitted = fit(x_train, y_train, a.model or default_model_dir(), settings)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predicted = predict(fitted, x_test, settings)
    predict_seconds = time.perf_counter() - start
    write_predictions(a.out, x_test, y_test, predicted)
    return {"train_rows": len(x_train), "intents": len(fitted.intents), "train_seconds": round(train_seconds, 1),
            "epoch_seconds": [round(s, 1) for s in fitted.epoch_seconds],
            "predict_seconds": round(predict_seconds, 1)}


def default_model_dir() -> str:
    """The all-MiniLM-L6-v2 folder that intentbal embeds (the one intentbal import, kept here)."""
    from intentbal.model.loading import embedded_model_dir

    return str(embedded_model_dir())


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


def class_weights(counts: Sequence[int]) -> list[float]:
    """Inverse-frequency weights w_c = N / (K * n_c): sum_c w_c * n_c = N."""
    total, k = sum(counts), len(counts)
    return [total / (k * n) for n in counts]


def adjusted_argmax(logits: Any, prior: Sequence[float], tau: float) -> list[int]:
    """The argmax of ``logits - tau * log(prior)`` per row (logits: a 2-D tensor or array)."""
    import torch

    shifted = torch.as_tensor(logits, dtype=torch.float32) - tau * torch.log(torch.tensor(prior, dtype=torch.float32))
    return shifted.argmax(-1).tolist()


def fit(texts: list[str], labels: list[str], model_dir: str, settings: Settings) -> Fitted:
    """Fine-tune every parameter of a sequence classifier on (texts, labels)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    intents = sorted(set(labels))
    if len(intents) < 2:
        raise BaselineError(f"expected at least 2 intents in the training rows, found {len(intents)}")
    index = {intent: i for i, intent in enumerate(intents)}
    counts = Counter(labels)
    n = [counts[i] for i in intents]
    torch.manual_seed(settings.seed)  # before the model, so its new head starts the same every run
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(intents), id2label=dict(enumerate(intents)), label2id=index)
    for p in model.parameters():
        p.requires_grad_(True)
    encoded = tokenizer(texts, truncation=True, max_length=settings.max_length)["input_ids"]
    targets = torch.tensor([index[y] for y in labels])
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(class_weights(n), dtype=torch.float32))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr)
    total_steps = math.ceil(len(texts) / settings.batch_size) * settings.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, round(settings.warmup * total_steps), total_steps)
    generator = torch.Generator().manual_seed(settings.seed)
    fitted = Fitted(model, tokenizer, intents, [c / len(labels) for c in n])
    model.train()
    for _ in range(settings.epochs):
        start = time.perf_counter()
        order = torch.randperm(len(texts), generator=generator).tolist()
        for i in range(0, len(order), settings.batch_size):
            rows = order[i:i + settings.batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[r] for r in rows]}, return_tensors="pt")
            loss = loss_fn(model(**batch).logits, targets[rows])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        fitted.epoch_seconds.append(time.perf_counter() - start)
    model.eval()
    return fitted


def predict(fitted: Fitted, texts: list[str], settings: Settings) -> list[str]:
    """The logit-adjusted predicted intent of each text."""
    import torch

    out: list[str] = []
    with torch.inference_mode():
        for i in range(0, len(texts), 128):
            batch = fitted.tokenizer(texts[i:i + 128], truncation=True, max_length=settings.max_length,
                                     padding=True, return_tensors="pt")
            out += [fitted.intents[k] for k in adjusted_argmax(fitted.model(**batch).logits, fitted.prior,
                                                               settings.tau)]
    return out


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
