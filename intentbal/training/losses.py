"""Class weights and the training loss (class-weighted cross-entropy, optionally with margins
against each intent's confusable neighbours and a balanced contrastive term): the one place the
weighting lives.

:class:`IntentLoss` is a ``torch.nn.Module``; it is built on first use (module ``__getattr__``)
so that importing this module, and ``intentbal.class_weights`` with it, never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from intentbal.config import TrainConfig


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
    row_offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy with per-class weights, averaged over the batch's total weight; fp32 whatever
    autocast the caller runs. :class:`IntentLoss` is this with its weights and offset held.

    ``offset`` (one value per class) is added to the logits inside the loss only: with
    ``tau * log(prior)`` it is the logit-adjusted loss of Menon et al. (2021), whose raw
    logits then score intents as if they were equally frequent. ``row_weights`` (one per row,
    e.g. below 1 for pseudo-labelled rows) multiply each row's class weight:
    ``sum(r_i * w_(y_i) * loss_i) / sum(r_i * w_(y_i))``. ``row_offset`` (rows x classes) is added
    to each row's logits inside the loss too: margins a row's target must beat those classes by.
    """
    import torch
    import torch.nn.functional as F

    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits = logits.float()
        if offset is not None:
            logits = logits + offset.float()
        if row_offset is not None:
            logits = logits + row_offset.float()
        class_weight = None if weights is None else weights.float()
        if row_weights is None:
            return F.cross_entropy(logits, targets, weight=class_weight)
        per_row = F.cross_entropy(logits, targets, reduction="none")
        weight = row_weights.float() * (class_weight[targets] if class_weight is not None else 1.0)
        return (weight * per_row).sum() / weight.sum()


def balanced_contrastive(
    embeddings: torch.Tensor, targets: torch.Tensor, prototypes: torch.Tensor, *, temperature: float,
    row_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Balanced supervised contrastive loss (Zhu et al., 2022, "Balanced Contrastive Learning for
    Long-Tailed Visual Recognition"), in fp32 whatever autocast the caller runs.

    The keys are the batch's rows and one vector per intent (``prototypes``, one row per class, so
    every intent is present in every batch), all normalised. For row ``i`` of intent ``y``, with
    similarities ``s_ik = z_i . k / temperature`` and ``K_c`` the keys of intent ``c`` other than ``i``::

        loss_i = -mean_{p in K_y} log( exp(s_ip) / sum_c mean_{k in K_c} exp(s_ik) )

    Averaging within each intent before summing over intents keeps a frequent intent's many rows
    from dominating the denominator. The batch's loss is the mean of ``loss_i``, weighted by
    ``row_weights`` when given.
    """
    import torch
    import torch.nn.functional as F

    with torch.autocast(device_type=embeddings.device.type, enabled=False):
        z = F.normalize(embeddings.float(), dim=-1)
        keys = torch.cat([z, F.normalize(prototypes.float(), dim=-1)])
        n_rows, n_classes = z.shape[0], prototypes.shape[0]
        key_class = torch.cat([targets, torch.arange(n_classes, device=targets.device)])
        other = torch.ones(n_rows, n_rows + n_classes, dtype=torch.bool, device=z.device)
        other[:, :n_rows].fill_diagonal_(False)
        # self is masked before taking the max, so one term of each row's sum is exp(0): no underflow to 0
        similarity = (z @ keys.T / temperature).masked_fill(~other, float("-inf"))
        similarity = similarity - similarity.detach().max(dim=1, keepdim=True).values
        of_class = F.one_hot(key_class, n_classes).float()
        denominator = ((similarity.exp() @ of_class) / (other.float() @ of_class)).sum(dim=1, keepdim=True)
        positive = (key_class.unsqueeze(0) == targets.unsqueeze(1)) & other
        log_prob = (similarity - denominator.log()).masked_fill(~positive, 0.0)
        per_row = -log_prob.sum(dim=1) / positive.sum(dim=1)
        if row_weights is None:
            return per_row.mean()
        return (row_weights.float() * per_row).sum() / row_weights.float().sum()


def neighbour_margins(prototypes: torch.Tensor, *, neighbours: int, margin: float) -> torch.Tensor:
    """The margins of the confusable-neighbour loss: a classes x classes matrix whose row ``y`` holds
    ``margin`` at the ``neighbours`` intents whose vectors (``prototypes``, one row per intent) are
    nearest to intent ``y``'s by cosine, and 0 elsewhere (its own column included).

    Added to the logits of a row of intent ``y`` inside the loss, it makes the row beat exactly
    those intents by ``margin`` logits, the pairs a model confuses most (``topping_up_by_card``
    against the other top-up intents), and leaves every other pair's loss as it was.
    """
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        unit = F.normalize(prototypes.detach().float(), dim=-1)
        similarity = (unit @ unit.T).fill_diagonal_(float("-inf"))
        k = min(neighbours, unit.shape[0] - 1)
        margins = torch.zeros_like(similarity)
        if k > 0:
            margins.scatter_(1, similarity.topk(k, dim=1).indices, margin)
    return margins


def weighting_of(config: TrainConfig) -> str:
    """The class-weighting scheme the loss applies: ``train.weighting``, or ``none`` with balanced
    batches, which already correct for frequency (the tail is not corrected twice)."""
    return "none" if config.batches == "balanced" else config.weighting


def loss_adjustment_of(config: TrainConfig) -> float:
    """The logit-adjusted loss's tau: ``train.loss_adjustment``, or 0 with balanced batches, whose
    intents the model already sees equally often."""
    return 0.0 if config.batches == "balanced" else config.loss_adjustment


def __getattr__(name: str) -> Any:
    if name == "IntentLoss":
        return _intent_loss()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _intent_loss() -> type[Any]:
    import torch

    class IntentLoss(torch.nn.Module):
        """The training loss, with its class weights and logit offsets held as buffers.

        For a batch of logits ``z_i`` with targets ``y_i``, class weights ``w`` and offsets ``delta``::

            loss = sum_i w[y_i] * -log softmax(z_i + delta)[y_i] / sum_i w[y_i]

        computed in fp32 whatever autocast the caller runs.

        - ``w`` comes from :func:`class_weights` with ``train.weighting`` on the counts the
          model trains on; ``effective_number`` is Cui et al. (2019), "Class-Balanced Loss Based
          on Effective Number of Samples". Without weighting (``none``) ``weights`` is None: the
          plain mean.
        - ``delta = tau * log(prior)`` with ``tau = train.loss_adjustment`` is the logit-adjusted
          loss of Menon et al. (2021), "Long-tail learning via logit adjustment": the offset is
          added inside the loss only, so the raw logits learn to score intents as if they were
          equally frequent. With ``tau = 0`` ``offset`` is None.

        - With margins set (:meth:`set_neighbours`, ``train.neighbour_margin``), a row of intent
          ``y`` sees ``margins[y]`` added to its logits too: it must beat ``y``'s nearest intents by
          that margin (see :func:`neighbour_margins`). Off (None) until set.
        - With ``contrastive > 0`` and the batch's ``embeddings`` and intent vectors (``prototypes``)
          given, ``contrastive * balanced_contrastive(...)`` is added (``train.contrastive_weight``).

        Both are buffers (not parameters, not saved in a model): ``.to(device)`` moves them.
        """

        weights: torch.Tensor | None
        offset: torch.Tensor | None
        margins: torch.Tensor | None

        def __init__(self, weights: Sequence[float] | None = None, offset: Sequence[float] | None = None, *,
                     contrastive: float = 0.0, temperature: float = 0.1) -> None:
            super().__init__()
            self.register_buffer("weights", _tensor(weights), persistent=False)
            self.register_buffer("offset", _tensor(offset), persistent=False)
            self.register_buffer("margins", None, persistent=False)
            self.contrastive, self.temperature = contrastive, temperature

        @classmethod
        def from_config(
            cls, config: TrainConfig, counts: Mapping[str, int], intents: Sequence[str]
        ) -> IntentLoss:
            """The loss ``config`` asks for, from the training ``counts``, classes in ``intents`` order."""
            from intentbal.model.adjustment import log_prior

            n = [counts[i] for i in intents]
            scheme = weighting_of(config)
            weights = None if scheme == "none" else class_weights(n, scheme=scheme, beta=config.beta)
            tau = loss_adjustment_of(config)
            offset = tau * log_prior(dict(counts), intents) if tau else None
            return cls(None if weights is None else weights.tolist(), None if offset is None else offset.tolist(),
                       contrastive=config.contrastive_weight, temperature=config.contrastive_temperature)

        def set_neighbours(self, prototypes: torch.Tensor, *, neighbours: int, margin: float) -> None:
            """Turn on the confusable-neighbour margins, the neighbours found among ``prototypes`` (the
            head's starting vectors, one row per class); a ``margin`` of 0 leaves them off."""
            if margin:
                margins = neighbour_margins(prototypes, neighbours=neighbours, margin=margin)
                self.margins = margins.to(prototypes.device)

        def forward(
            self, logits: torch.Tensor, targets: torch.Tensor, row_weights: torch.Tensor | None = None, *,
            embeddings: torch.Tensor | None = None, prototypes: torch.Tensor | None = None,
        ) -> torch.Tensor:
            row_offset = None if self.margins is None else self.margins[targets]
            loss = weighted_cross_entropy(logits, targets, self.weights, self.offset, row_weights, row_offset)
            if self.contrastive and embeddings is not None and prototypes is not None:
                loss = loss + self.contrastive * balanced_contrastive(
                    embeddings, targets, prototypes, temperature=self.temperature, row_weights=row_weights)
            return loss

    IntentLoss.__qualname__ = "IntentLoss"
    return IntentLoss


def _tensor(values: Sequence[float] | None) -> Any:
    import torch

    return None if values is None else torch.tensor(list(values), dtype=torch.float32)
