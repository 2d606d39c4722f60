"""The step contract both training loops run: a padded batch in, its loss out.

The eager loop (:mod:`intentbal.training.loop`) and the bucketed loop
(:mod:`intentbal.training.bucketed`) build their batches differently (on the host, or gathered on
the device at a fixed width), and then step the optimiser differently (the bucketed loop reads its
learning rate from a table on the device and never waits for the host); the forward pass and the
loss between are this one function, so a change to either lands in both.
"""

from __future__ import annotations

from typing import Any

from intentbal.training.plan import TrainingPlan


def batch_loss(
    plan: TrainingPlan, forward: Any, loss_fn: Any, input_ids: Any, mask: Any, targets: Any, *,
    row_weights: Any = None, mix: tuple[Any, Any] | None = None,
) -> tuple[Any, Any]:
    """``(loss, embeddings)`` of one batch, already on the training device.

    ``forward`` is what :attr:`TrainingPlan.forward` names: the model (``logits``), a
    :class:`~intentbal.training.smote.SmoteHead` (``smote``: called with ``mix``, embedding SMOTE's
    partners and weights, it adds synthetic rows, which weigh as their sources) or a
    :class:`~intentbal.training.contrastive.ContrastiveHead` (``contrastive``). ``row_weights``: each
    row's weight in the loss, None for 1. ``embeddings`` are the rows' embeddings with ``mix``, else
    None. The encoder runs under bf16 autocast when the plan says so (without autocast's weight
    cache, which a CUDA graph cannot hold); the head and the loss run in fp32.
    """
    import torch

    embeddings = pooled = prototypes = None
    with torch.autocast(input_ids.device.type, dtype=torch.bfloat16, enabled=plan.bf16, cache_enabled=False):
        if plan.forward == "smote":
            assert mix is not None  # the eager loop draws the partners of every SMOTE step
            logits, targets, embeddings = forward(input_ids, mask, targets, mix[0], mix[1])
        elif plan.forward == "contrastive":
            logits, pooled, prototypes = forward(input_ids, mask)
        else:
            logits = forward(input_ids=input_ids, attention_mask=mask).logits
    if row_weights is not None and mix is not None:  # the synthetic rows follow the real ones
        row_weights = torch.cat([row_weights, row_weights[mix[1] > 0]])
    loss = loss_fn(logits, targets, row_weights, embeddings=pooled, prototypes=prototypes)
    return loss, embeddings
