"""Prediction with a trained model: batches sorted by length, single utterances fast."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from intentbal.train import pad


@dataclass
class IntentClassifier:
    """A loaded model folder, ready to predict.

    >>> clf = IntentClassifier.load("runs/quickstart/model")
    >>> clf.predict(["where is my parcel"])
    (['track_order'], [0.97])
    """

    model: Any
    tokenizer: Any
    intents: list[str]
    max_length: int
    meta: dict[str, Any]
    batch_size: int = 128

    @classmethod
    def load(cls, model_dir: str | Path, *, max_length: int = 64, batch_size: int = 128) -> IntentClassifier:
        """Load ``model_dir``; its saved ``max_length`` wins over the argument."""
        from intentbal.models import intents_of, load_classifier

        tokenizer, model, meta = load_classifier(model_dir)
        return cls(model, tokenizer, intents_of(model), meta.get("max_length", max_length), meta, batch_size)

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """Softmax probabilities, one row per text, one column per intent (``self.intents``)."""
        return predict_proba(texts, model=self.model, tokenizer=self.tokenizer,
                             max_length=self.max_length, batch_size=self.batch_size)

    def predict(self, texts: Sequence[str]) -> tuple[list[str], list[float]]:
        """The most likely intent of each text and its probability."""
        probs = self.proba(texts)
        best = probs.argmax(axis=1)
        return [self.intents[i] for i in best], [float(probs[r, i]) for r, i in enumerate(best)]


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
