"""The streams of training batches: shuffled from length-sorted pools, or class-balanced."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

POOL_BATCHES = 32  # batches per length-sorted pool: enough to cut padding, still well shuffled


def shuffled_batches(ids: list[list[int]], batch_size: int, generator: Any) -> Iterator[list[int]]:
    """Endless epochs of shuffled batches of row indices, each drawn from a length-sorted pool.

    The stream depends only on the generator's seed, so it can be replayed to resume.
    """
    import torch

    pool = batch_size * POOL_BATCHES
    while True:
        order = torch.randperm(len(ids), generator=generator).tolist()
        epoch: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: len(ids[i]))
            epoch.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
        for b in torch.randperm(len(epoch), generator=generator).tolist():
            yield epoch[b]


def balanced_batches(targets: Sequence[int], batch_size: int, per_intent: int, generator: Any) -> Iterator[list[int]]:
    """Endless class-balanced batches of row indices (``train.batches=balanced``): each batch is
    ``batch_size // per_intent`` distinct intents drawn uniformly (all of them when there are fewer),
    with ``per_intent`` of each intent's rows drawn with replacement.

    The stream depends only on ``targets`` and the generator's seed, so it can be replayed to resume.
    """
    import torch

    rows: dict[int, list[int]] = {}
    for i, target in enumerate(targets):
        rows.setdefault(int(target), []).append(i)
    intents = sorted(rows)
    per_batch = min(len(intents), max(1, batch_size // per_intent))
    while True:
        chosen = torch.randperm(len(intents), generator=generator)[:per_batch].tolist()
        batch: list[int] = []
        for c in chosen:
            members = rows[intents[c]]
            picks = torch.randint(len(members), (per_intent,), generator=generator).tolist()
            batch.extend(members[p] for p in picks)
        yield batch
