"""Post-hoc logit adjustment (Menon et al., 2021): subtract ``tau * log(prior)`` from the logits.

A classifier trained on long-tailed data leans towards frequent intents; removing a
multiple of the log prior moves the decisions back towards the rare ones. ``tau`` is
chosen on validation data (macro recall), and the shift is written into the classifier's
output bias, so the saved model -- in intentbal or in ``transformers.pipeline`` -- predicts
with it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

log = logging.getLogger(__name__)

TAUS = tuple(np.round(np.arange(0.0, 3.01, 0.25), 2))
DEFAULT_TAU = 1.0  # Menon et al.'s choice, used when there is no validation data


def log_prior(counts: dict[str, int], intents: Sequence[str]) -> np.ndarray:
    """Log of each intent's share of the training examples, in ``intents`` order."""
    n = np.array([counts.get(i, 0) for i in intents], dtype=np.float64)
    if (n <= 0).any():
        raise ValueError("every intent needs a positive training count")
    return np.log(n / n.sum())


def macro_recall(predicted: Sequence[str], gold: Sequence[str]) -> float:
    hits: dict[str, list[bool]] = defaultdict(list)
    for p, g in zip(predicted, gold):
        hits[g].append(p == g)
    return float(np.mean([np.mean(v) for v in hits.values()]))


def choose_tau(
    log_probs: np.ndarray, gold: Sequence[str], intents: Sequence[str], prior: np.ndarray,
    taus: Sequence[float] = TAUS,
) -> float:
    """The ``tau`` with the best macro recall on labelled (validation) data; the smallest on ties."""
    scores = []
    for tau in taus:
        predicted = [intents[i] for i in np.argmax(log_probs - tau * prior, axis=1)]
        scores.append(macro_recall(predicted, gold))
    log.debug("tau candidates, macro recall: %s", ", ".join(f"{t:g} {s:.4f}" for t, s in zip(taus, scores)))
    return float(taus[int(np.argmax(scores))])


def bake(model: Any, prior: np.ndarray, tau: float) -> None:
    """Subtract ``tau * prior`` from the bias of the layer that outputs the logits."""
    import torch

    head = output_layer(model)
    with torch.no_grad():
        head.bias -= torch.as_tensor(tau * prior, dtype=head.bias.dtype, device=head.bias.device)


def output_layer(model: Any) -> Any:
    """The last linear layer with one output per intent and a bias: the classifier's logits."""
    import torch

    n = model.config.num_labels
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == n
             and m.bias is not None]
    if not heads:
        raise ValueError(f"no linear layer with {n} outputs and a bias in {type(model).__name__}")
    return heads[-1]


TauSource = Literal["given", "validation", "held out of train", "default"]


TAU_SOURCES: dict[str, str] = {
    "given": "as configured",
    "validation": "chosen on the validation data",
    "held out of train": "chosen on data held out of train",
    "default": "the default without validation data",
}


@dataclass(frozen=True, kw_only=True)
class Adjustment:
    """The post-hoc logit adjustment: ``tau`` and where it was chosen."""

    tau: float
    chosen_on: TauSource

    def to_dict(self) -> dict[str, object]:
        return {"tau": self.tau, "chosen_on": self.chosen_on}

    def describe(self) -> str:
        return describe_tau(self.chosen_on)


def describe_tau(chosen_on: str) -> str:
    """Words for where tau was chosen (any value read back from a saved model is welcome)."""
    return TAU_SOURCES.get(chosen_on, chosen_on)
