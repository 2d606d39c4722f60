"""The training forward of the balanced contrastive term (``train.contrastive_weight``).

The contrastive term (:func:`intentbal.training.losses.balanced_contrastive`) needs what the logits are
made of: the batch's sentence embeddings and the head's intent vectors. :class:`ContrastiveHead`
returns them beside the logits. It is a module of its own, not a method, so that a data-parallel
wrapper around it sees the forward pass (and so synchronises the gradients) as it does the
model's. Imported only when training (it needs torch, which ``import intentbal`` must not load).
"""

from __future__ import annotations

from typing import Any

import torch


class ContrastiveHead(torch.nn.Module):
    """The prototype model's training forward, returning ``(logits, embeddings, prototypes)``."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The rows' logits (fp32, as the model's own forward gives them), their mean-pooled
        embeddings, and the head's intent vectors (one row per intent; gradients flow to both)."""
        embeddings = self.model.embed(input_ids, attention_mask)
        return self.model.score(embeddings), embeddings, self.model.classifier.weight
