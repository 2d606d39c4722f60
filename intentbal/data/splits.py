"""Splitting labelled rows: stratified hold-outs that keep rare intents, and cross-validation folds."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from intentbal.config import Config
from intentbal.data.types import IntentData


def stratified_split(
    data: IntentData, *, fraction: float, seed: int, min_count: int = 2
) -> tuple[IntentData, IntentData, list[str]]:
    """Hold out ``fraction`` of each intent, at least one example and never all of them.

    Returns ``(train, held_out, not_evaluable)``: intents with fewer than ``min_count``
    examples stay wholly in train and are listed as not evaluable rather than dropped.
    """
    by_intent: dict[str, list[int]] = defaultdict(list)
    for i, intent in enumerate(data.intents):
        by_intent[intent].append(i)
    rng = random.Random(seed)
    held: list[int] = []
    not_evaluable: list[str] = []
    for intent in sorted(by_intent):
        idx = by_intent[intent]
        if len(idx) < max(2, min_count):
            not_evaluable.append(intent)
            continue
        take = min(len(idx) - 1, max(1, round(fraction * len(idx))))
        held.extend(rng.sample(idx, take))
    held_set = set(held)
    train_idx = [i for i in range(len(data)) if i not in held_set]
    return data.subset(train_idx), data.subset(sorted(held)), not_evaluable


def fold_assignment(intents: Sequence[str], *, folds: int, seed: int) -> list[int]:
    """A fold for every example: each intent's examples in a shuffled round-robin from a random fold,
    so an intent with fewer examples than folds still has each example held out once."""
    rng = random.Random(f"folds:{seed}")
    by_intent: dict[str, list[int]] = defaultdict(list)
    for i, intent in enumerate(intents):
        by_intent[intent].append(i)
    out = [0] * len(intents)
    for intent in sorted(by_intent):
        idx = by_intent[intent][:]
        rng.shuffle(idx)
        offset = rng.randrange(folds)
        for pos, i in enumerate(idx):
            out[i] = (pos + offset) % folds
    return out


VALIDATION_MIN_COUNT = 5  # intents with fewer examples keep them all for training


def hold_out_validation(config: Config, data: IntentData) -> tuple[IntentData, IntentData | None]:
    """``data`` without the rows held out to choose tau on, and those rows.

    Only when the recipe has a choice to make (``train.logit_adjustment`` "auto") and
    ``data.validation_fraction`` > 0: that share of each intent with at least
    ``VALIDATION_MIN_COUNT`` examples (seed ``seed + 1``). Else ``(data, None)``.
    """
    if config.data.validation_fraction <= 0 or config.train.logit_adjustment != "auto":
        return data, None
    train, validation, _ = stratified_split(data, fraction=config.data.validation_fraction, seed=config.seed + 1,
                                            min_count=VALIDATION_MIN_COUNT)
    return train, validation if len(validation) else None
