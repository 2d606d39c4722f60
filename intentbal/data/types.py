"""Intent data in memory: parallel lists of texts and intents, where each row came from, and row weights."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Made = Literal["augment", "pseudo", "description"]


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """How a row that is not a labelled example was made, and by which row transform."""

    made_by: Made
    detail: str = ""  # augment: the augmenter
    source: str = ""  # augment: the labelled text it was made from
    confidence: float | None = None  # pseudo: the teacher's confidence in the row's intent


@dataclass(frozen=True)
class IntentData:
    """Utterances and their intents, in file order; ``source`` names where they came from.

    ``provenance`` holds, per row, how a row added by a row transform was made (None for a
    labelled example); None when every row is a labelled example.
    """

    texts: list[str]
    intents: list[str]  # all "" when the data carry no intents (see ``labelled``)
    source: str
    labelled: bool = True
    weights: list[float] | None = None  # each row's weight in the training loss; None: 1 for every row
    provenance: list[Provenance | None] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Iterable[int]) -> IntentData:
        idx = list(indices)
        weights = None if self.weights is None else [self.weights[i] for i in idx]
        made = None if self.provenance is None else [self.provenance[i] for i in idx]
        return IntentData([self.texts[i] for i in idx], [self.intents[i] for i in idx], self.source, self.labelled,
                          weights, made)

    def extended(self, texts: Sequence[str], intents: Sequence[str], *, weight: float | None = None,
                 provenance: Sequence[Provenance] | None = None) -> IntentData:
        """These rows followed by ``texts`` with ``intents``; with ``weight`` each new row weighs that
        much in the loss (and the rows before 1, unless they had weights); ``provenance`` says how
        each new row was made."""
        weights = self.weights
        if weight is not None:
            own = self.weights if self.weights is not None else [1.0] * len(self)
            weights = [*own, *[weight] * len(texts)]
        elif weights is not None:
            weights = [*weights, *[1.0] * len(texts)]
        made: list[Provenance | None] | None = None
        if provenance is not None or self.provenance is not None:
            before: list[Provenance | None] = list(self.provenance) if self.provenance else [None] * len(self)
            after: list[Provenance | None] = list(provenance) if provenance else [None] * len(texts)
            made = [*before, *after]
        return IntentData([*self.texts, *texts], [*self.intents, *intents], self.source, self.labelled, weights, made)

    def made_by(self, *kinds: Made) -> list[int]:
        """The rows made by one of ``kinds`` of row transform."""
        if self.provenance is None:
            return []
        return [i for i, p in enumerate(self.provenance) if p is not None and p.made_by in kinds]

    def without(self, *kinds: Made) -> IntentData:
        """These rows without those made by ``kinds`` of row transform."""
        dropped = set(self.made_by(*kinds))
        return self.subset(i for i in range(len(self)) if i not in dropped) if dropped else self

    def counts(self) -> dict[str, int]:
        """Rows per intent, rarest first (ties by name), as profiles list them."""
        counts = Counter(self.intents)
        return dict(sorted(counts.items(), key=lambda kv: (kv[1], kv[0])))
