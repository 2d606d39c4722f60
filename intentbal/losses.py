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
    offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy with per-class weights, averaged over the batch's total weight; fp32 whatever
    autocast the caller runs.

    ``offset`` (one value per class) is added to the logits inside the loss only: with
    ``tau * log(prior)`` it is the logit-adjusted loss of Menon et al. (2021), whose raw
    logits then score intents as if they were equally frequent.
    """
    import torch
    import torch.nn.functional as F

    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits = logits.float()
        if offset is not None:
            logits = logits + offset.float()
        return F.cross_entropy(logits, targets, weight=None if weights is None else weights.float())


def row_weighted_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None, rows: torch.Tensor,
    offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`weighted_cross_entropy` with a weight per row as well: ``sum(w_y * r * l) / sum(w_y * r)``.

    ``rows`` holds 1 for a real row and 0 for a filler row (one that only pads a batch to a fixed
    size), so filler rows change neither the value nor the gradient; with every row at 1 it is
    F.cross_entropy's weighted mean, ``sum(w_y * l) / sum(w_y)``. Reads nothing back to the host.
    """
    import torch
    import torch.nn.functional as F

    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits = logits.float()
        if offset is not None:
            logits = logits + offset.float()
        scale = rows.float() if weights is None else weights.float()[targets] * rows.float()
        return (F.cross_entropy(logits, targets, reduction="none") * scale).sum() / scale.sum()
