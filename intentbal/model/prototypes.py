"""The prototype head's starting vectors: each intent's mean embedding, leaning on its description."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from intentbal.model.encoding import encode, pad

if TYPE_CHECKING:
    from intentbal.model.memo import MemoTable


def init_prototypes(model: Any, ids: list[list[int]], targets: Any, *, pad_id: int, device: Any,
                    batch_size: int = 128, anchors: tuple[list[list[int]], Any, float] | None = None,
                    cached: Any = None) -> None:
    """Point each intent's head vector at the mean embedding of its training examples.

    ``cached``: the :class:`~intentbal.training.frozen.CachedBottom` standing in for the model's
    frozen lower layers, holding the states of ``ids`` (row i of ``ids`` is its row i): the examples'
    embeddings then run only the top layers, as training steps do.

    ``anchors`` ``(ids, targets, k)``: texts (descriptions) that count as ``k`` examples each of their
    intent, ``w = normalise(n * mean_example + k * e_anchor)``: an intent with few examples leans on
    its anchor, a frequent one on its examples. Without anchors the vectors are the examples' mean.

    Every fit starts its head so, most from the same pretrained weights: inside
    :func:`~intentbal.model.memo.shared_encoder_outputs` the embeddings come from the run's table.
    """
    import torch

    from intentbal.model.memo import memo_table

    table = memo_table(f"{type(model).__name__} unit embeddings", [model.encoder])
    means = intent_means(model, ids, targets, pad_id=pad_id, device=device, batch_size=batch_size, anchors=anchors,
                         cached=cached, table=table)
    with torch.no_grad():
        model.classifier.weight.copy_(means)
        model.classifier.bias.zero_()


def intent_means(model: Any, ids: list[list[int]], targets: Any, *, pad_id: int, device: Any, batch_size: int = 128,
                 anchors: tuple[list[list[int]], Any, float] | None = None, cached: Any = None,
                 table: MemoTable | None = None) -> Any:
    """Each intent's unit-length mean embedding (a row per row of ``model.classifier``), in eval mode,
    without gradients; the model's mode is left as it was. ``anchors`` and ``cached`` as in
    :func:`init_prototypes`; ``table``: embeddings of the model's current weights kept for the run
    (:mod:`intentbal.model.memo`), read and added to. The contrastive stage passes none: its
    weights change between calls, so nothing it embeds is met again."""
    import torch

    was_training = model.training
    model.eval()
    sums = _embedding_sums(model, ids, targets, pad_id=pad_id, device=device, batch_size=batch_size, cached=cached,
                           table=table)
    if anchors is not None:
        anchor_ids, anchor_targets, weight = anchors
        sums += weight * _embedding_sums(model, anchor_ids, anchor_targets, pad_id=pad_id, device=device,
                                         batch_size=batch_size, table=table)
    model.train(was_training)
    return torch.nn.functional.normalize(sums, dim=-1)


def _embedding_sums(model: Any, ids: list[list[int]], targets: Any, *, pad_id: int, device: Any,
                    batch_size: int, cached: Any = None, table: MemoTable | None = None) -> Any:
    """Per intent (a row of the head), the sum of its texts' unit-length embeddings: each distinct
    text embedded once, or not at all where ``table`` (the run's, see :mod:`intentbal.model.memo`)
    has it from another fit with the same weights."""
    import torch

    from intentbal.model.encoding import length_sorted

    rows = [tuple(r) for r in ids]
    unit = table.known(rows) if table is not None else {}
    todo = list({row: i for i, row in enumerate(rows) if row not in unit}.values())  # one index per distinct row
    sums = torch.zeros_like(model.classifier.weight, dtype=torch.float32)
    with torch.inference_mode():
        for chunk in length_sorted([ids[i] for i in todo], batch_size):
            picked = [todo[j] for j in chunk]
            pooled = embed_rows(model, ids, picked, pad_id=pad_id, device=device, cached=cached).float()
            found = dict(zip((rows[i] for i in picked), torch.nn.functional.normalize(pooled, dim=-1)))
            unit.update(found)
            if table is not None:
                table.add(found)
        if rows:
            sums.index_add_(0, targets.to(device), torch.stack([unit[row] for row in rows]))
    return sums


def description_anchors(tokenizer: Any, descriptions: Mapping[str, str] | None, index: dict[str, int], max_length: int,
             weight: float) -> tuple[list[list[int]], Any, float] | None:
    """The descriptions of the model's intents as :func:`init_prototypes` anchors; None at weight 0."""
    import torch

    known = [(intent, text) for intent, text in (descriptions or {}).items() if intent in index]
    if not weight or not known:
        return None
    ids, _ = encode(tokenizer, [text for _, text in known], max_length)
    return ids, torch.tensor([index[intent] for intent, _ in known]), weight


def embed_rows(model: Any, ids: list[list[int]], rows: list[int], *, pad_id: int, device: Any,
               cached: Any = None) -> Any:
    """The prototype ``model``'s sentence embeddings (``model.embed``) of the rows ``rows`` of ``ids``,
    padded to the longest; with ``cached`` (the frozen lower layers' states of ``ids``, see
    :func:`init_prototypes`) only the layers above them run. Gradients and autocast are the caller's."""
    import torch

    input_ids, mask = pad([ids[i] for i in rows], pad_id)
    if cached is not None:
        cached.select(torch.tensor(rows, device=device))
    try:
        return model.embed(input_ids.to(device), mask.to(device))
    finally:
        if cached is not None:
            cached.select(None)
