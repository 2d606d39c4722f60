"""A supervised contrastive stage before the head (``train.contrastive_epochs``).

SetFit (Tunstall et al., 2022) and CPFT (Zhang et al., 2021) shape the encoder's sentence space
with a contrastive objective first and fit the classifier afterwards. Here the stage trains the
encoder's trained layers for ``train.contrastive_epochs`` passes of class-balanced batches
(``train.batch_size`` rows, ``train.intent_examples`` of each of their intents, so every row has
positives) with the balanced supervised contrastive loss
(:func:`intentbal.training.losses.balanced_contrastive`) on a small projection head that is
thrown away afterwards, as SupCon does. The projection sees unit-length embeddings. Every intent
is in every batch through its prototype: the unit mean of its rows' unit embeddings, recomputed at
the start of each pass (through the same projection, without gradient to the encoder), so a rare
intent's rows are pushed away from its confusable neighbours at every step, not only when they
happen to share a batch. Every row counts fully here (row weights apply to the fine-tune).

The fine-tune then starts as usual, from the head's starting vectors taken on the reshaped
encoder. Imported only when training (it needs torch, which ``import intentbal`` must not load).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from intentbal.config import TrainConfig
from intentbal.model.prototypes import embed_rows, intent_means
from intentbal.progress import Progress
from intentbal.training.batching import balanced_batches
from intentbal.training.losses import balanced_contrastive
from intentbal.training.optimiser import make_optimiser

log = logging.getLogger(__name__)

PROJECTION_DIM = 128  # SupCon's and CPFT's projection width


def projection_head(hidden: int) -> torch.nn.Module:
    """The stage's projection: Linear, ReLU, Linear to ``PROJECTION_DIM``, discarded after the stage."""
    return torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, PROJECTION_DIM))


def stage_steps(rows: int, config: TrainConfig) -> int:
    """The stage's optimisation steps: ``train.contrastive_epochs`` passes of ``train.batch_size`` rows."""
    return max(1, math.ceil(config.contrastive_epochs * math.ceil(rows / config.batch_size)))


def contrastive_stage(
    model: Any, ids: list[list[int]], targets: torch.Tensor, *, config: TrainConfig, pad_id: int, device: Any,
    seed: int, bf16: bool = False, cached: Any = None, progress: Progress | None = None,
) -> list[float]:
    """Run the contrastive stage on the prototype ``model`` (it needs ``model.embed``) over the
    training rows ``ids`` of intents ``targets`` and return each pass's mean loss.

    ``cached``: the :class:`~intentbal.training.frozen.CachedBottom` standing in for the frozen lower
    layers (row i of ``ids`` is its row i). The parameters the fine-tune trains are the ones trained
    here, with their own AdamW at ``train.learning_rate`` (the fine-tune's weight decay rule,
    warm-up ``train.warmup_ratio``, then linear decay); ``model.classifier`` is not touched (the
    caller sets the head's starting vectors afterwards). ``bf16`` runs the encoder under bf16
    autocast, as the training steps do; the projection and the loss stay fp32. The batches depend
    only on ``targets`` and ``seed``. ``progress("train contrastive", step, total)`` follows each step.
    """
    torch.manual_seed(seed)
    projection = projection_head(model.classifier.weight.shape[1]).to(device)
    trained = torch.nn.ModuleList([model.encoder, projection])
    params = [p for p in trained.parameters() if p.requires_grad]
    total = stage_steps(len(ids), config)
    per_pass = max(1, math.ceil(len(ids) / config.batch_size))
    optimizer, scheduler = make_optimiser(trained, config, total, device)
    # at least two intents a batch where the batch has room; a row alone still has its intent's key as positive
    per_intent = max(1, min(config.intent_examples, config.batch_size // 2))
    batches = balanced_batches(targets.tolist(), config.batch_size, per_intent,
                               torch.Generator().manual_seed(seed))
    losses: list[float] = []
    running: list[torch.Tensor] = []
    model.train()
    for step in range(1, total + 1):
        if (step - 1) % per_pass == 0:  # every intent's mean embedding on the encoder as it now stands
            prototypes = intent_means(model, ids, targets, pad_id=pad_id, device=device, cached=cached)
        rows = next(batches)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            embeddings = embed_rows(model, ids, rows, pad_id=pad_id, device=device, cached=cached)
        # unit length, as the keys are: the projection sees rows and intents on one scale
        unit = torch.nn.functional.normalize(embeddings.float(), dim=-1)
        loss = balanced_contrastive(projection(unit), targets[rows].to(device),
                                    projection(prototypes), temperature=config.contrastive_temperature)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        running.append(loss.detach())
        if progress:
            progress("train contrastive", step, total)
        if step % per_pass == 0 or step == total:
            losses.append(float(torch.stack(running).mean()))
            running = []
            log.info("contrastive stage, pass %d/%d: loss %.4f", len(losses), math.ceil(total / per_pass), losses[-1])
    return losses
