"""Intent data in memory: parallel lists of texts and intents, where they came from, and row weights."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class IntentData:
    """Utterances and their intents, in file order; ``source`` names where they came from."""

    texts: list[str]
    intents: list[str]  # all "" when the data carry no intents (see ``labelled``)
    source: str
    labelled: bool = True
    weights: list[float] | None = None  # each row's weight in the training loss; None: 1 for every row

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Iterable[int]) -> IntentData:
        idx = list(indices)
        weights = None if self.weights is None else [self.weights[i] for i in idx]
        return IntentData([self.texts[i] for i in idx], [self.intents[i] for i in idx], self.source, self.labelled,
                          weights)

    def extended(self, texts: Sequence[str], intents: Sequence[str], *, weight: float) -> IntentData:
        """These rows followed by ``texts`` with ``intents``, each weighing ``weight`` in the loss."""
        own = self.weights if self.weights is not None else [1.0] * len(self)
        return IntentData([*self.texts, *texts], [*self.intents, *intents], self.source, self.labelled,
                          [*own, *[weight] * len(texts)])
