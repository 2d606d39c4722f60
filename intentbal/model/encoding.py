"""Turning texts into padded token ids: tokenise once (huge texts cut first), pad per batch, batch by length."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

# Characters kept per token of max_length before tokenizing: a token spans a few characters, so the
# first max_length tokens are always in the kept prefix, and a huge text costs no more than that.
CHARS_PER_TOKEN = 32


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[list[list[int]], int]:
    """Token ids of each text, cut to ``max_length``; also how many texts had to be cut. A text is
    cut to ``max_length * CHARS_PER_TOKEN`` characters before it is tokenized (bounded memory)."""
    if not texts:  # tokenizers fail on an empty batch
        return [], 0
    limit = max_length * CHARS_PER_TOKEN
    kept = [t[:limit] for t in texts]
    full = tokenizer(kept, truncation=False, verbose=False)["input_ids"]
    cut = sum(len(ids) > max_length or len(t) > limit for ids, t in zip(full, texts))
    if not cut:
        return full, 0
    return tokenizer(kept, truncation=True, max_length=max_length)["input_ids"], cut


def pad(sequences: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """Right-pad token ids to the longest sequence; returns ``(input_ids, attention_mask)`` tensors."""
    import torch

    input_ids, mask = pad_arrays(sequences, pad_id)
    return torch.from_numpy(input_ids), torch.from_numpy(mask)


def pad_arrays(sequences: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pad` as int64 NumPy arrays, the inputs of any backend (torch or ONNX Runtime)."""
    width = max(len(s) for s in sequences)
    input_ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return input_ids, mask


def pad_id_of(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def length_sorted(ids: list[list[int]], batch_size: int) -> Iterator[list[int]]:
    """Row indices in batches of similar length, for prediction."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
