"""Prediction with a trained model: batches sorted by length, single utterances fast."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from intentbal.config import ModelConfig
from intentbal.errors import IntentbalError
from intentbal.inference.backends import Backend, choose_backend, onnx_logits, open_session, run_batches, torch_logits
from intentbal.io.atomic import atomic_write_text
from intentbal.model.encoding import encode, pad_id_of
from intentbal.model.loading import (
    check_max_length,
    folder_config,
    intents_of,
    load_classifier,
    load_tokenizer,
    quiet_transformers,
)
from intentbal.model.record import RECORD_FILE, ModelRecord
from intentbal.progress import Progress

if TYPE_CHECKING:
    from intentbal.training.results import TrainResult


Ranking = list[tuple[str, float]]  # (intent, probability), most likely first
DEFAULT_FALLBACK_INTENT = "nlu_fallback"


@dataclass(kw_only=True)
class IntentClassifier:
    """A loaded model folder, ready to predict, through PyTorch or ONNX Runtime (``backend``).

    >>> clf = IntentClassifier.load("runs/quickstart/model")
    >>> clf.predict(["where is my parcel"])
    (['track_order'], [0.97])
    >>> clf.rank(["where is my parcel"], 2)
    [[('track_order', 0.97), ('refund', 0.01)]]

    ``fallback_threshold`` (read from the folder's ``intentbal.json`` when one was saved with
    the model, ``None`` otherwise; assign to change it): :meth:`predict` answers
    ``fallback_intent`` for a text whose best probability is under it.
    """

    model: Any  # a torch module, or an onnxruntime InferenceSession when backend is "onnx"
    tokenizer: Any
    intents: list[str]
    max_length: int
    record: ModelRecord | None = None  # the folder's intentbal.json; None for a model intentbal did not save
    batch_size: int = 128
    truncated: int = 0  # texts cut to max_length in the last call
    backend: Literal["torch", "onnx"] = "torch"
    fallback_threshold: float | None = None
    fallback_intent: str = DEFAULT_FALLBACK_INTENT

    @classmethod
    def load(
        cls, model_dir: str | Path, *, config: ModelConfig | None = None, batch_size: int = 128,
        backend: Backend = "auto",
    ) -> IntentClassifier:
        """Load ``model_dir``; the ``max_length`` saved with it wins over ``config``'s.

        ``backend``: ``"torch"``; ``"onnx"``, ONNX Runtime on the folder's ``model.onnx`` (written
        by ``intentbal export``; an :class:`IntentbalError` without it); or ``"auto"``, ONNX
        Runtime when the folder holds a checked export and onnxruntime is installed, else torch.
        Both give the same columns, row order and truncation count. Loading prints nothing:
        transformers' logs and progress bars are off while it runs and set back afterwards.
        """
        config = config or ModelConfig()
        chosen: Literal["torch", "onnx"]
        with quiet_transformers():
            if choose_backend(model_dir, backend) == "onnx":
                tokenizer, intents, record = load_tokenizer(model_dir, config)
                model, chosen = open_session(model_dir), "onnx"
            else:
                tokenizer, model, record = load_classifier(model_dir, config)
                intents, chosen = intents_of(model), "torch"
        saved = record is not None
        max_length = record.max_length if record is not None else config.max_length
        check_max_length(max_length, folder_config(model_dir), str(model_dir),
                         key=f"{Path(model_dir) / RECORD_FILE}: max_length" if saved else "model.max_length",
                         fix=f"fix max_length in {Path(model_dir) / RECORD_FILE}" if saved else None)
        fallback = record.fallback if record is not None else None
        return cls(model=model, tokenizer=tokenizer, intents=intents, max_length=max_length, record=record,
                   batch_size=batch_size, backend=chosen,
                   fallback_threshold=fallback.threshold if fallback else None,
                   fallback_intent=fallback.intent if fallback else DEFAULT_FALLBACK_INTENT)

    @classmethod
    def from_trained(
        cls, trained: TrainResult, *, max_length: int, batch_size: int = 128, record: ModelRecord | None = None
    ) -> IntentClassifier:
        """The classifier of a model just trained, without a round trip through disk."""
        return cls(model=trained.model, tokenizer=trained.tokenizer, intents=trained.intents, max_length=max_length,
                   record=record, batch_size=batch_size)

    @property
    def meta(self) -> dict[str, Any]:
        """The folder's ``intentbal.json`` as a dict ({} without one)."""
        return self.record.model_dump(mode="json") if self.record is not None else {}

    def save(self, folder: str | Path) -> None:
        """Write this classifier into ``folder`` (created if missing) for :meth:`load` to give back.

        Writes the model as safetensors (``save_pretrained``), the tokenizer with its
        ``model_max_length`` set to ``max_length`` (so transformers cuts where intentbal does) and
        ``intentbal.json``: ``record`` with this ``max_length``; the fallback :meth:`load` reads is
        ``record.fallback``, not ``fallback_threshold``. No path of this machine is written. The model
        card (``README.md``) and the atomicity of the folder as a whole are the caller's. Only the
        torch backend can be saved.
        """
        if self.backend != "torch":
            raise IntentbalError(
                f"{folder}: expected a classifier on the torch backend to save, found the {self.backend} backend; "
                "load the model folder with backend='torch' and save that"
            )
        from intentbal.training.monitor import check_finite_weights

        check_finite_weights(self.model)
        folder = Path(folder)
        config = getattr(self.model, "config", None)
        own = getattr(config, "_name_or_path", None)
        if config is not None:
            config._name_or_path = folder.name  # where it was loaded from is a path of this machine
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with quiet_transformers():  # no "Writing model shards" bar from a library call
                self.model.save_pretrained(folder, safe_serialization=True)
                self._save_tokenizer(folder)
        except OSError as exc:
            raise IntentbalError(f"{folder}: could not write the model ({exc.strerror or type(exc).__name__}); "
                                 "free disk space or choose a writable folder") from exc
        finally:
            if config is not None:
                config._name_or_path = own
        record = self.record or ModelRecord(max_length=self.max_length)
        atomic_write_text(folder / RECORD_FILE, record.model_copy(update={"max_length": self.max_length}).to_json())

    def _save_tokenizer(self, folder: Path) -> None:
        own = self.tokenizer.model_max_length
        self.tokenizer.model_max_length = self.max_length  # transformers then cuts where intentbal does
        try:
            self.tokenizer.save_pretrained(folder)
        finally:
            self.tokenizer.model_max_length = own

    def proba(self, texts: Sequence[str], *, progress: Progress | None = None, bf16: bool = False) -> np.ndarray:
        """Softmax probabilities, one row per text, one column per intent (``self.intents``).

        ``progress("predict", done, total)`` is called after each batch, ``done`` counting texts.
        ``bf16``: the torch backend runs the encoder under bf16 autocast (faster where the device
        has bf16 natively; probabilities move by about 1e-2 at most); ONNX Runtime ignores it.
        """
        logits = onnx_logits(self.model) if self.backend == "onnx" else torch_logits(self.model, bf16=bf16)
        ids, self.truncated = encode(self.tokenizer, texts, self.max_length)
        return run_batches(ids, logits, n_labels=len(self.intents), pad_id=pad_id_of(self.tokenizer),
                           batch_size=self.batch_size, progress=progress)

    def predict(self, texts: Sequence[str]) -> tuple[list[str], list[float]]:
        """The intent of each text and the probability of the most likely intent.

        The intent is ``fallback_intent`` where that probability is under ``fallback_threshold``.
        """
        return self.answer(self.proba(texts))

    def rank(self, texts: Sequence[str], k: int) -> list[Ranking]:
        """The ``k`` most likely intents of each text with their probabilities, most likely first
        (Rasa's ``intent_ranking``); the model's intents only, whatever the fallback threshold."""
        return self.ranking(self.proba(texts), k)

    def decide(self, probs: np.ndarray) -> tuple[list[str], list[float]]:
        """The most likely intent of each row of ``probs`` and its probability (no fallback)."""
        best = probs.argmax(axis=1)
        return [self.intents[i] for i in best], [float(probs[r, i]) for r, i in enumerate(best)]

    def answer(self, probs: np.ndarray) -> tuple[list[str], list[float]]:
        """:meth:`decide`, then ``fallback_intent`` for rows under ``fallback_threshold``."""
        intents, confidences = self.decide(probs)
        if self.fallback_threshold is None:
            return intents, confidences
        return ([self.fallback_intent if c < self.fallback_threshold else i for i, c in zip(intents, confidences)],
                confidences)

    def ranking(self, probs: np.ndarray, k: int) -> list[Ranking]:
        """The ``k`` most likely intents of each row of ``probs`` (ties: the earlier intent first)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        order = np.argsort(-probs, axis=1, kind="stable")[:, : min(k, len(self.intents))]
        return [[(self.intents[i], float(probs[r, i])) for i in row] for r, row in enumerate(order)]
