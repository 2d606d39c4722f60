"""The frozen lower layers of an encoder, run once per row and cached (``train.trainable_layers``).

With only the top layers of an encoder trained, everything below them -- the embeddings and
the lower layers -- computes the same hidden states for a row at every epoch. For the
BERT-family layout (``embeddings`` plus an ``encoder.layer`` list: BERT, MiniLM, RoBERTa, ...)
:func:`freeze_lower` runs that part once per distinct row, in eval mode (no dropout), and each
training step runs only the top layers, the pooling and the head. Other layouts are frozen
without the cache: the same parameters train, but the lower layers run at every step.

The cache is one tensor on the training device, the training rows' states padded to one width;
a loop selects the rows of its batch by index (:meth:`CachedBottom.select`) before each forward,
so a step never reads token ids back to the host (the bucketed loop's CUDA graphs replay it).

The swap lasts for the training loop only: :meth:`Frozen.restore` puts the encoder back, so
the model is saved and loaded as a normal full model folder. Imported only when training
(it needs torch, which ``import intentbal`` must not load).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

import torch

from intentbal.model.memo import Row, memo_table

CACHE_LIMIT_BYTES = 1 << 30  # above this the frozen layers run at every step instead of being kept


@dataclass(kw_only=True)
class Frozen:
    """What :func:`freeze_lower` changed in a model, and how to undo it."""

    cached: bool
    warning: str | None = None
    bottom: CachedBottom | None = None  # with the BERT-family layout: what stands in for the frozen layers
    undo: list[Callable[[], None]] = field(default_factory=list)

    def restore(self) -> None:
        """Put the encoder's own embeddings and full layer list back, or let the frozen parameters learn again."""
        while self.undo:
            self.undo.pop()()


def encoder_of(model: Any) -> Any:
    """The transformer inside a classifier: the prototype head's ``encoder``, else ``base_model``."""
    from intentbal.model.modeling import IntentbalPrototypeClassifier

    return model.encoder if isinstance(model, IntentbalPrototypeClassifier) else model.base_model


def freeze_lower(model: Any, *, trainable: int | None, rows: Sequence[Sequence[int]], device: Any,
                 width: int | None = None) -> Frozen | None:
    """Freeze all but the top ``trainable`` layers of ``model``'s encoder; None when that is all of them.

    With the BERT-family layout the frozen part is replaced, until :meth:`Frozen.restore`, by a
    :class:`CachedBottom` whose output for the training ``rows`` (token ids, at most
    ``width`` tokens each; the bucketed loop pads to it) is computed up front, unless it would take
    more than ``CACHE_LIMIT_BYTES``;
    its parameters then leave ``model.parameters()``. Other layouts keep their frozen parameters
    in place with ``requires_grad`` off. A model whose layers cannot be found trains every layer,
    and the result says so in ``warning``.
    """
    encoder = encoder_of(model)
    layers = _layer_list(encoder)
    if trainable is None or (layers is not None and trainable >= len(layers)):
        return None
    if layers is None:
        return Frozen(cached=False, warning=f"train.trainable_layers={trainable}: found no list of layers in "
                      f"{type(encoder).__name__}, so every layer was trained")
    bert_layout = hasattr(encoder, "embeddings") and getattr(getattr(encoder, "encoder", None), "layer", None) is layers
    if not bert_layout:
        return _freeze_in_place(encoder, layers, trainable)
    width = width or max((len(r) for r in rows), default=1)
    keep = len(rows) * width * encoder.config.hidden_size * 4 <= CACHE_LIMIT_BYTES
    bottom = CachedBottom(encoder.embeddings, list(layers[: len(layers) - trainable]), device=device)
    if keep:
        bottom.fill(rows, width=width)
    return _swap(encoder, bottom, layers, trainable)


def _layer_list(encoder: Any) -> torch.nn.ModuleList | None:
    """The encoder's list of transformer layers: the module list as long as the model is deep."""
    depth = getattr(encoder.config, "num_hidden_layers", None)
    return next((m for m in encoder.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == depth), None)


def _freeze_in_place(encoder: Any, layers: Any, trainable: int) -> Frozen:
    """Every parameter of the encoder outside its top ``trainable`` layers stops learning, until restored."""
    top = {id(p) for layer in layers[len(layers) - trainable:] for p in layer.parameters()}
    frozen = [p for p in encoder.parameters() if id(p) not in top and p.requires_grad]
    for param in frozen:
        param.requires_grad_(False)

    def undo() -> None:
        for param in frozen:
            param.requires_grad_(True)

    return Frozen(cached=False, undo=[undo])  # other layouts: the frozen part runs at every step


def _swap(encoder: Any, bottom: CachedBottom, layers: Any, trainable: int) -> Frozen:
    embeddings, stack = encoder.embeddings, encoder.encoder
    stack.layer = torch.nn.ModuleList(list(layers[len(layers) - trainable:]))
    encoder.embeddings = bottom
    hook = encoder.register_forward_pre_hook(bottom.see_mask, with_kwargs=True)

    def undo() -> None:
        hook.remove()
        encoder.embeddings, stack.layer = embeddings, layers

    return Frozen(cached=bottom.states is not None, bottom=bottom, undo=[undo])


class CachedBottom(torch.nn.Module):
    """Stands in for an encoder's ``embeddings``: the output of the embeddings and the lower layers.

    Those modules are kept out of the module tree (so out of the optimiser and the checkpoints) and
    run in eval mode under ``inference_mode``. :meth:`fill` computes the training rows' states once
    into ``states`` (one row per training row and a last, zero row for the bucketed loop's filler);
    with rows selected (:meth:`select`), a forward returns theirs, cut to the batch's width. Without
    a selection (validation texts, descriptions) it computes its input's rows: each alone at its own
    length (the count of real tokens comes from the attention mask the encoder was called with, see
    :meth:`see_mask`), which is what the full model computes for it under any right padding.
    """

    def __init__(self, embeddings: Any, lower: list[Any], *, device: Any) -> None:
        super().__init__()
        self.frozen = (embeddings, *lower)  # a tuple, so not registered as submodules
        for module in self.frozen:
            module.eval()
        self.device = device
        self.states: torch.Tensor | None = None
        self.selected: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None
        self.memo: dict[Row, torch.Tensor] = {}  # other rows met (validation texts), kept while states are
        self.shared = memo_table("frozen layers' states", [self])  # the run's rows, when it shares them

    def hidden_modules(self) -> tuple[Any, ...]:
        """The frozen modules it runs, kept out of its module tree (see
        :func:`~intentbal.model.memo.weights_digest`)."""
        return self.frozen

    def see_mask(self, _module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Forward pre-hook on the encoder: remember the attention mask of the coming call."""
        self.mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)

    def fill(self, rows: Sequence[Sequence[int]], *, width: int, batch_size: int = 128) -> None:
        """``states``: each distinct row computed once, in batches of one length (no padding)."""
        where: dict[Row, list[int]] = {}
        for i, row in enumerate(rows):
            where.setdefault(tuple(row), []).append(i)
        computed = self._compute(list(where), batch_size)
        hidden = next(iter(computed.values())).shape[-1] if computed else 1
        states = torch.zeros(len(rows) + 1, width, hidden, device=self.device)
        for row, out in computed.items():
            states[where[row], : len(row)] = out
        self.states = states

    def select(self, rows: torch.Tensor | None) -> None:
        """The training rows (indices into ``states``, on the device) of the coming forwards; None
        computes what comes instead."""
        self.selected = rows

    def _compute(self, rows: list[Row], batch_size: int = 128) -> dict[Row, torch.Tensor]:
        """The states of distinct ``rows``: from the run's table where another fit computed them, else
        computed here (and added to it)."""
        known = self.shared.known(rows) if self.shared is not None else {}
        found: dict[Row, torch.Tensor] = {}
        with torch.inference_mode():
            for _, same in groupby(sorted((r for r in rows if r not in known), key=len), key=len):
                group = list(same)
                for start in range(0, len(group), batch_size):
                    found.update(self._run(group[start:start + batch_size]))
        if self.shared is not None:
            self.shared.add(found)
        return {**known, **found}

    def _run(self, chunk: list[Row]) -> dict[Row, torch.Tensor]:
        embeddings, *lower = self.frozen
        hidden = embeddings(input_ids=torch.tensor(chunk, device=self.device))
        for layer in lower:
            out = layer(hidden)
            hidden = out[0] if isinstance(out, tuple) else out  # older transformers return tuples
        return dict(zip(chunk, hidden))

    def forward(self, input_ids: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
        if input_ids is None:
            raise ValueError("the cached frozen layers are keyed by input_ids; inputs_embeds cannot be used")
        if self.selected is not None and self.states is not None:
            # one copy, contiguous like freshly computed states: a strided view would send the
            # trained layers down other kernels, whose floats round differently
            return self.states.narrow(1, 0, input_ids.shape[1]).index_select(0, self.selected)
        mask = self.mask if self.mask is not None and self.mask.dim() == 2 else torch.ones_like(input_ids)
        lengths = [int(n) for n in mask.sum(1).tolist()]
        rows = [tuple(ids[:n]) for ids, n in zip(input_ids.tolist(), lengths)]
        found = {**self.memo, **self._compute([r for r in dict.fromkeys(rows) if r not in self.memo])}
        if self.states is not None:  # with the training rows cached, the few others are kept too
            self.memo = found
        first = found[rows[0]]
        out = torch.zeros(*input_ids.shape, first.shape[-1], dtype=first.dtype, device=first.device)
        for i, (row, n) in enumerate(zip(rows, lengths)):
            out[i, :n] = found[row]
        return out
