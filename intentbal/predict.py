"""Prediction with a trained model: batches sorted by length, single utterances fast."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from intentbal.config import ModelConfig

if TYPE_CHECKING:
    from intentbal.train import TrainResult

from intentbal.batching import encode, length_sorted, pad, pad_id_of


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
    truncated: int = 0  # texts cut to max_length in the last call

    @classmethod
    def load(
        cls, model_dir: str | Path, *, config: ModelConfig | None = None, batch_size: int = 128
    ) -> IntentClassifier:
        """Load ``model_dir``; the ``max_length`` saved with it wins over ``config``'s."""
        from intentbal.models import intents_of, load_classifier

        config = config or ModelConfig()
        tokenizer, model, meta = load_classifier(model_dir, config)
        max_length = meta.get("max_length", config.max_length)
        return cls(model, tokenizer, intents_of(model), max_length, meta, batch_size)

    @classmethod
    def from_trained(
        cls, trained: TrainResult, *, max_length: int, batch_size: int = 128, meta: dict[str, Any] | None = None
    ) -> IntentClassifier:
        """The classifier of a model just trained, without a round trip through disk."""
        return cls(trained.model, trained.tokenizer, trained.intents, max_length, meta or {}, batch_size)

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """Softmax probabilities, one row per text, one column per intent (``self.intents``)."""
        probs, self.truncated = predict_proba(texts, model=self.model, tokenizer=self.tokenizer,
                                              max_length=self.max_length, batch_size=self.batch_size)
        return probs

    def predict(self, texts: Sequence[str]) -> tuple[list[str], list[float]]:
        """The most likely intent of each text and its probability."""
        return self.decide(self.proba(texts))

    def decide(self, probs: np.ndarray) -> tuple[list[str], list[float]]:
        """The most likely intent of each row of ``probs`` and its probability."""
        best = probs.argmax(axis=1)
        return [self.intents[i] for i in best], [float(probs[r, i]) for r, i in enumerate(best)]


def predict_proba(
    texts: Sequence[str], *, model: Any, tokenizer: Any, max_length: int, batch_size: int = 128
) -> tuple[np.ndarray, int]:
    """Softmax probabilities (one row per text, columns in ``id2label`` order) and the
    number of texts cut to ``max_length``.

    Texts are run in length order (little padding) and returned in input order.
    """
    import torch

    ids, cut = encode(tokenizer, texts, max_length)
    out = np.zeros((len(ids), model.config.num_labels), dtype=np.float32)
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        for chunk in length_sorted(ids, batch_size):
            input_ids, mask = pad([ids[i] for i in chunk], pad_id_of(tokenizer))
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
            out[chunk] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    return out, cut
