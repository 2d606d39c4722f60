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

    from intentbal import distributed
    from intentbal.models import load_for_training

    intents = sorted(set(data.intents))
    if len(intents) < 2:
        raise IntentbalError(
            f"{data.source}: expected at least 2 intents to train a classifier, found "
            f"{len(intents)} ({', '.join(intents)}); add examples of other intents"
        )
    rank, world = distributed.setup()
    device = distributed.device()
    torch.manual_seed(seed)
    tokenizer, model = load_for_training(model_config.name_or_path, intents)
    model.to(device)
    counts = Counter(data.intents)
    weights = class_weights([counts[i] for i in intents], scheme=train_config.weighting, beta=train_config.beta)
    weight_tensor = None if train_config.weighting == "none" else torch.tensor(weights, dtype=torch.float32)
    ids = tokenizer(data.texts, truncation=True, max_length=model_config.max_length)["input_ids"]
    index = {intent: i for i, intent in enumerate(intents)}
    targets = torch.tensor([index[i] for i in data.intents])

    total = max(1, math.ceil(train_config.epochs * math.ceil(len(ids) / (train_config.batch_size * world))))
    optimizer, scheduler = _optimiser(model, train_config, total, device)
    step_fn = _step(distributed.wrap(model), optimizer, scheduler, weight_tensor, device, train_config.precision)
    batches = _batches(ids, train_config.batch_size, torch.Generator().manual_seed(seed))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    model.train()
    samples, start = 0, time.perf_counter()
    for step in range(1, total + 1):
        group = [next(batches) for _ in range(world)]  # every rank draws the same stream
        batch = group[rank]
        step_fn(*pad([ids[i] for i in batch], pad_id), targets[batch])
        samples += sum(len(b) for b in group)
        if progress:
            progress("train", step, total)
    seconds = time.perf_counter() - start
    model.eval()
    return TrainResult(model, tokenizer, intents, [float(w) for w in weights], seconds, samples, total)


def _optimiser(model: Any, config: TrainConfig, total: int, device: Any) -> tuple[Any, Any]:
    import torch
    from transformers import get_linear_schedule_with_warmup

    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.learning_rate, **fused)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total), total)
    return optimizer, scheduler


def _step(
    model: Any, optimizer: Any, scheduler: Any, weights: Any, device: Any, precision: str
) -> Callable[[Any, Any, Any], Any]:
    """One optimisation step on a padded batch; bf16 autocast on GPUs unless told otherwise."""
    import torch

    weights = weights.to(device) if weights is not None else None
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())

    def step(input_ids: Any, mask: Any, target: Any) -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=input_ids.to(device, non_blocking=True),
                           attention_mask=mask.to(device, non_blocking=True)).logits
        loss = weighted_cross_entropy(logits, target.to(device, non_blocking=True), weights)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


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
