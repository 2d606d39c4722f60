"""Class weights and the class-weighted loss: the one place the weighting lives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def class_weights(counts: Sequence[int], *, scheme: str, beta: float = 0.999) -> np.ndarray:
    """Per-class loss weights from the training counts the model actually sees.

    Schemes (``n_c`` = count of class ``c``):

    - ``none``: 1 for every class.
    - ``inverse``: proportional to ``1 / n_c``.
    - ``sqrt_inverse``: proportional to ``1 / sqrt(n_c)``.
    - ``effective_number``: proportional to ``(1 - beta) / (1 - beta ** n_c)``
      (Cui et al., 2019).

    Weights are scaled so that the average weight per training example is 1
    (``sum_c n_c * w_c == sum_c n_c``); for ``inverse`` this is scikit-learn's
    ``class_weight="balanced"``, ``N / (K * n_c)``.
    """
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim != 1 or n.size == 0 or (n <= 0).any():
        raise ValueError(f"counts must be a non-empty list of positive numbers, got {list(counts)}")
    if scheme == "none":
        raw = np.ones_like(n)
    elif scheme == "inverse":
        raw = 1.0 / n
    elif scheme == "sqrt_inverse":
        raw = 1.0 / np.sqrt(n)
    elif scheme == "effective_number":
        raw = (1.0 - beta) / (1.0 - np.power(beta, n))
    else:
        raise ValueError(f"unknown weighting scheme {scheme!r}")
    return raw * n.sum() / (raw * n).sum()


def weighted_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None,
    offset: torch.Tensor | None = None, row_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy with per-class weights, averaged over the batch's total weight; fp32 whatever
    autocast the caller runs.

    ``offset`` (one value per class) is added to the logits inside the loss only: with
    ``tau * log(prior)`` it is the logit-adjusted loss of Menon et al. (2021), whose raw
    logits then score intents as if they were equally frequent. ``row_weights`` (one per row,
    e.g. below 1 for pseudo-labelled rows) multiply each row's class weight:
    ``sum(r_i * w_(y_i) * loss_i) / sum(r_i * w_(y_i))``.
    """
    import torch
    import torch.nn.functional as F

    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits = logits.float()
        if offset is not None:
            logits = logits + offset.float()
        class_weight = None if weights is None else weights.float()
        if row_weights is None:
            return F.cross_entropy(logits, targets, weight=class_weight)
        per_row = F.cross_entropy(logits, targets, reduction="none")
        weight = row_weights.float() * (class_weight[targets] if class_weight is not None else 1.0)
        return (weight * per_row).sum() / weight.sum()
