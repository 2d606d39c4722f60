"""Fine-tuning a sequence classifier with the class-weighted loss.

A lean loop: the data are tokenised once, batches are drawn from length-sorted pools
(little padding), and the loss comes from :mod:`intentbal.losses`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from intentbal.config import ModelConfig, TrainConfig
from intentbal.data import IntentData
from intentbal.errors import IntentbalError
from intentbal.losses import class_weights, weighted_cross_entropy

Progress = Callable[[str, int, int], None]
POOL_BATCHES = 32  # batches per length-sorted pool: enough to cut padding, still well shuffled


@dataclass
class TrainResult:
    model: Any
    tokenizer: Any
    intents: list[str]
    class_weights: list[float]
    train_seconds: float
    train_samples: int
    steps: int

    @property
    def train_samples_per_second(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds > 0 else 0.0


def fine_tune(
    data: IntentData,
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    seed: int,
    progress: Progress | None = None,
) -> TrainResult:
    """Fine-tune ``model_config.name_or_path`` on ``data`` and return the trained model.

    Class weights follow ``train_config.weighting`` and are computed from the counts in
    ``data`` -- the rows the model actually trains on, augmented ones included.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    from intentbal.models import load_for_training

    intents = sorted(set(data.intents))
    if len(intents) < 2:
        raise IntentbalError(
            f"{data.source}: expected at least 2 intents to train a classifier, found "
            f"{len(intents)} ({', '.join(intents)}); add examples of other intents"
        )
    torch.manual_seed(seed)
    tokenizer, model = load_for_training(model_config.name_or_path, intents)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    counts = Counter(data.intents)
    weights = class_weights([counts[i] for i in intents], scheme=train_config.weighting, beta=train_config.beta)
    weight_tensor = (
        None if train_config.weighting == "none" else torch.tensor(weights, dtype=torch.float32, device=device)
    )
    ids = tokenizer(data.texts, truncation=True, max_length=model_config.max_length)["input_ids"]
    index = {intent: i for i, intent in enumerate(intents)}
    targets = torch.tensor([index[i] for i in data.intents], device=device)

    steps_per_epoch = math.ceil(len(ids) / train_config.batch_size)
    total = max(1, math.ceil(train_config.epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(_param_groups(model, train_config.weight_decay), lr=train_config.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(train_config.warmup_ratio * total), total)
    generator = torch.Generator().manual_seed(seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    model.train()
    samples, start = 0, time.perf_counter()
    batches = _batches(ids, train_config.batch_size, generator)
    for step in range(1, total + 1):
        batch = next(batches)
        input_ids, mask = pad([ids[i] for i in batch], pad_id)
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        loss = weighted_cross_entropy(logits, targets[batch], weight_tensor)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        samples += len(batch)
        if progress:
            progress("train", step, total)
    seconds = time.perf_counter() - start
    model.eval()
    return TrainResult(model, tokenizer, intents, [float(w) for w in weights], seconds, samples, total)


def pad(sequences: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """Right-pad token ids to the longest sequence; returns ``(input_ids, attention_mask)``."""
    import torch

    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return input_ids, mask


def _batches(ids: list[list[int]], batch_size: int, generator: Any) -> Iterator[list[int]]:
    """Endless epochs of shuffled batches, each drawn from a length-sorted pool."""
    import torch

    pool = batch_size * POOL_BATCHES
    while True:
        order = torch.randperm(len(ids), generator=generator).tolist()
        epoch: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: len(ids[i]))
            epoch.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
        for b in torch.randperm(len(epoch), generator=generator).tolist():
            yield epoch[b]


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
