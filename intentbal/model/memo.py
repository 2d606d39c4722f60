"""Encoder outputs shared by the fine-tunes of one run, computed once per row (:func:`shared_encoder_outputs`).

A run fits several models that start from the same pretrained encoder: the model reported on and
the shipped refit, a teacher and its student, the members of a soup, the folds of ``cv``. Their
frozen lower layers (:mod:`intentbal.training.frozen`) compute the same states for a row, and before
training their encoders give a row the same sentence embedding, which starts the prototype head
(:mod:`intentbal.model.prototypes`). Inside :func:`shared_encoder_outputs` each such output is kept
in a table named by what it is and by a digest of the weights that made it, so a fit whose weights
differ (another model, a contrastive stage, a warm start) never reads another's rows. Outside it
nothing is kept, and nothing changes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

log = logging.getLogger(__name__)

LIMIT_BYTES = 512 << 20  # what a run may keep; rows met after that are computed again when needed

Row = tuple[int, ...]


class EncoderMemo:
    """The tables of one run, and the bytes they hold together."""

    def __init__(self, *, limit_bytes: int = LIMIT_BYTES) -> None:
        self.limit_bytes = limit_bytes
        self.used_bytes = 0
        self.hits = 0  # rows read from a table instead of computed
        self.tables: dict[tuple[str, str], MemoTable] = {}

    def table(self, kind: str, modules: Iterable[Any]) -> MemoTable:
        """The table of ``kind`` (what its rows hold) computed by ``modules`` as their weights are now."""
        key = (kind, weights_digest(modules))
        return self.tables.setdefault(key, MemoTable(memo=self))


class MemoTable:
    """Outputs by row (token ids), all of one kind made by the same weights."""

    def __init__(self, *, memo: EncoderMemo) -> None:
        self.memo = memo
        self.rows: dict[Row, Any] = {}

    def known(self, rows: Iterable[Row]) -> dict[Row, Any]:
        """Those of ``rows`` the table holds, with their outputs."""
        found = {row: self.rows[row] for row in rows if row in self.rows}
        self.memo.hits += len(found)
        return found

    def add(self, found: Mapping[Row, Any]) -> None:
        """Keep ``found`` (row to tensor), while the run's tables stay within their limit."""
        for row, tensor in found.items():
            size = tensor.numel() * tensor.element_size()
            if row in self.rows or self.memo.used_bytes + size > self.memo.limit_bytes:
                continue
            self.rows[row] = tensor
            self.memo.used_bytes += size


_ACTIVE: ContextVar[EncoderMemo | None] = ContextVar("intentbal_encoder_memo", default=None)


@contextmanager
def shared_encoder_outputs(*, limit_bytes: int = LIMIT_BYTES) -> Iterator[EncoderMemo]:
    """Share encoder outputs between the fine-tunes run inside the block (see the module's text)."""
    memo = EncoderMemo(limit_bytes=limit_bytes)
    token = _ACTIVE.set(memo)
    try:
        yield memo
    finally:
        _ACTIVE.reset(token)
        log.debug("encoder outputs: %d rows kept in %d tables (%.0f MB), %d read back instead of computed",
                  sum(len(t.rows) for t in memo.tables.values()), len(memo.tables), memo.used_bytes / 2**20,
                  memo.hits)


def memo_table(kind: str, modules: Iterable[Any]) -> MemoTable | None:
    """The run's table of ``kind`` for ``modules``' weights; None outside :func:`shared_encoder_outputs`."""
    memo = _ACTIVE.get()
    return None if memo is None else memo.table(kind, modules)


def weights_digest(modules: Iterable[Any]) -> str:
    """A digest of every parameter and buffer of ``modules`` (names, shapes, dtypes, devices and
    values), those a module keeps out of its tree (``hidden_modules()``, as the cached frozen layers
    do) included: equal digests, the same function of the token ids."""
    import torch

    h = hashlib.blake2b(digest_size=16)
    for module in modules:
        for sub in module.modules():
            inner = [*sub.named_parameters(recurse=False), *sub.named_buffers(recurse=False)]
            hidden = [(f"hidden{i}.{name}", t) for i, m in enumerate(getattr(sub, "hidden_modules", tuple)())
                      for name, t in [*m.named_parameters(), *m.named_buffers()]]
            for name, tensor in [*inner, *hidden]:
                t = tensor.detach()
                h.update(f"{type(sub).__name__}.{name}:{tuple(t.shape)}:{t.dtype}:{t.device};".encode())
                h.update(t.reshape(-1).contiguous().view(torch.uint8).cpu().numpy())
    return h.hexdigest()
