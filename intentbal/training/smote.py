"""SMOTE in the encoder's embedding space, for the prototype head.

Text cannot be interpolated, embeddings can: each training row of a rare intent also trains on
a point between its embedding and the embedding of another example of the same intent (Chawla
et al. 2002, with the intent's other examples as neighbours). The partner's embedding comes
from a memory of every row's embedding the last time it was in a batch, so no extra forward
pass is needed; the gradient flows through the row's own embedding.

A rare intent here is one with fewer distinct texts than the median intent: augmentation can
raise its row count, not the number of genuinely different examples.

:class:`SmoteHead` (a ``torch.nn.Module``, built on first use so this module imports without
torch) is the training forward that adds the synthetic rows: the batch's embeddings from
``model.embed``, the interpolated points, and the logits of both from ``model.score``, with the
synthetic rows' targets taken from the batch's own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from statistics import median
from typing import Any


class EmbeddingSmote:
    """Partners and interpolation weights for a batch, and the memory they come from."""

    def __init__(self, texts: Sequence[str], targets: Sequence[int], *, seed: int) -> None:
        distinct: dict[int, set[str]] = defaultdict(set)
        for text, target in zip(texts, targets):
            distinct[target].add(text)
        cutoff = median(len(v) for v in distinct.values())
        self.rare = {t for t, v in distinct.items() if 1 < len(v) < cutoff}
        self.texts, self.targets, self.seed = list(texts), list(targets), seed
        self.rows: dict[int, list[int]] = defaultdict(list)
        for row, target in enumerate(self.targets):
            self.rows[target].append(row)
        self.memory: Any = None  # (rows, hidden) tensor, filled as rows are seen
        self.seen: Any = None

    def partners(self, batch: Sequence[int], *, step: int) -> tuple[Any, Any]:
        """``(mix_with, weight)`` for :class:`SmoteHead`: weight 0 where a row gets no synthetic twin.

        Draws depend only on ``seed`` and ``step``, so a resumed run draws the same.
        """
        import torch

        hidden = self.memory.shape[1] if self.memory is not None else 1
        mix_with, weight = torch.zeros(len(batch), hidden), torch.zeros(len(batch))
        if self.memory is None:
            return mix_with, weight
        rng = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        for i, row in enumerate(batch):
            target = self.targets[row]
            if target not in self.rare:
                continue
            others = [r for r in self.rows[target] if self.seen[r] and self.texts[r] != self.texts[row]]
            if others:
                mix_with[i] = self.memory[others[int(torch.randint(len(others), (1,), generator=rng))]]
                weight[i] = float(torch.rand(1, generator=rng))
        return mix_with, weight

    def store(self, batch: Sequence[int], embeddings: Any) -> None:
        """Remember the batch rows' (detached, normalised) embeddings."""
        import torch

        if self.memory is None:
            self.memory = torch.zeros(len(self.targets), embeddings.shape[1])
            self.seen = torch.zeros(len(self.targets), dtype=torch.bool)
        index = torch.as_tensor(list(batch))
        self.memory[index] = embeddings.detach().float().cpu()
        self.seen[index] = True

    def state(self) -> dict[str, Any]:
        return {"memory": self.memory, "seen": self.seen}

    def load(self, state: dict[str, Any]) -> None:
        self.memory, self.seen = state["memory"], state["seen"]


def __getattr__(name: str) -> Any:
    if name == "SmoteHead":
        return _smote_head()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _smote_head() -> type[Any]:
    import torch

    class SmoteHead(torch.nn.Module):
        """The prototype model's training forward with embedding SMOTE.

        A module of its own, not a method, so that a data-parallel wrapper around it sees the
        forward pass (and so synchronises the gradients) as it does the model's.
        """

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, targets: torch.Tensor,
            mix_with: torch.Tensor, mix_weight: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            """``(logits, targets, embeddings)``: the rows' logits, then one row more for each row
            with ``mix_weight`` w > 0, the point ``e + w * (mix_with - e)`` between its normalised
            embedding ``e`` and its partner's, with the row's own target; and the rows' normalised
            embeddings (detached) for :meth:`EmbeddingSmote.store`. Logits in fp32."""
            embedded = self.model.embed(input_ids, attention_mask)
            with torch.autocast(device_type=embedded.device.type, enabled=False):
                pooled = torch.nn.functional.normalize(embedded.float(), dim=-1)
                chosen = mix_weight > 0
                w = mix_weight[chosen].unsqueeze(-1).to(pooled.dtype)
                synthetic = pooled[chosen] + w * (mix_with[chosen].to(pooled) - pooled[chosen])
                points = torch.cat([pooled, torch.nn.functional.normalize(synthetic, dim=-1)])
                logits = self.model.score(points, normalised=True)
            return logits, torch.cat([targets, targets[chosen]]), pooled.detach()

    SmoteHead.__qualname__ = "SmoteHead"
    return SmoteHead
