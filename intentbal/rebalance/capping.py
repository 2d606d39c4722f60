"""Random undersampling: at most so many rows of each intent (``augment.max_per_intent``)."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from intentbal.data.types import IntentData


def cap_intents(data: IntentData, *, max_count: int, seed: int) -> IntentData:
    """Random undersampling: at most ``max_count`` rows of each intent, a seeded sample, order kept."""
    by_intent: dict[str, list[int]] = defaultdict(list)
    for i, intent in enumerate(data.intents):
        by_intent[intent].append(i)
    keep: list[int] = []
    for intent in sorted(by_intent):
        rows = by_intent[intent]
        keep += rows if len(rows) <= max_count else random.Random(f"{seed}:cap:{intent}").sample(rows, max_count)
    return data.subset(sorted(keep))


@dataclass(frozen=True, kw_only=True)
class CapIntents:
    """The row transform of :func:`cap_intents`: rows removed, none added."""

    max_count: int
    seed: int
    name: str = "capping"

    def resample(self, rows: IntentData) -> IntentData:
        return cap_intents(rows, max_count=self.max_count, seed=self.seed)
