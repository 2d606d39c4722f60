"""What a fine-tune returns: the trained model and its training curve."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from intentbal.config import TrainConfig
from intentbal.data.types import IntentData
from intentbal.errors import IntentbalError
from intentbal.training.losses import class_weights, weighting_of


@dataclass(frozen=True, kw_only=True)
class EpochRecord:
    """One point of the training curve: the mean training loss over the steps of an epoch (the
    last one may be partial) and the macro recall on the validation data after its last step."""

    epoch: float  # epochs done at ``step``: 1.0, 2.0, ..., and e.g. 2.5 after half of a third
    step: int
    loss: float
    validation_macro_recall: float | None = None
    member: int = 0  # which model of a soup (train.soup) it belongs to

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(kw_only=True)
class TrainResult:
    model: Any
    tokenizer: Any
    intents: list[str]
    class_weights: list[float]
    train_seconds: float
    train_samples: int
    steps: int
    resumed_from: int = 0
    warnings: list[str] = field(default_factory=list)
    history: list[EpochRecord] = field(default_factory=list)

    @property
    def train_samples_per_second(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds > 0 else 0.0


def check_trainable(data: IntentData) -> list[str]:
    """The intents of ``data``, sorted; an error when there are fewer than two."""
    intents = sorted(set(data.intents))
    if len(intents) < 2:
        raise IntentbalError(
            f"{data.source}: expected at least 2 intents to train a classifier, found "
            f"{len(intents)} ({', '.join(intents)}); add examples of other intents"
        )
    return intents


def loss_weights(counts: Counter[str], intents: list[str], config: TrainConfig) -> list[float]:
    """The loss's class weights in ``intents`` order, from the counts the model trains on."""
    return [float(w) for w in class_weights([counts[i] for i in intents], scheme=weighting_of(config),
                                            beta=config.beta)]
