"""Batch prediction with a loaded classifier."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from intentbal.train import pad


def predict_proba(
    texts: Sequence[str], *, model: Any, tokenizer: Any, max_length: int, batch_size: int = 128
) -> np.ndarray:
    """Softmax probabilities, one row per text, columns in the model's ``id2label`` order.

    Texts are run in length order (little padding) and returned in input order.
    """
    import torch

    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = np.zeros((len(ids), model.config.num_labels), dtype=np.float32)
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            input_ids, mask = pad([ids[i] for i in chunk], pad_id)
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
            out[chunk] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    return out
