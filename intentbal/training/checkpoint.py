"""Checkpoints: the training state saved every ``train.save_steps`` steps, and finished fits kept for a resume."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intentbal.config import ModelConfig, TrainConfig
from intentbal.data.types import IntentData
from intentbal.errors import IntentbalError
from intentbal.training.monitor import LossMeter
from intentbal.training.results import EpochRecord, TrainResult, check_trainable, loss_weights

log = logging.getLogger(__name__)


def untrained(data: IntentData, *, model_config: ModelConfig, train_config: TrainConfig) -> TrainResult:
    """An untrained model for ``data``'s intents, with the class weights :func:`fine_tune` would
    use: the skeleton that kept weights are loaded into."""
    from intentbal.model.loading import load_for_training

    intents = check_trainable(data)
    tokenizer, model = load_for_training(model_config, intents)
    model.eval()
    weights = loss_weights(Counter(data.intents), intents, train_config)
    return TrainResult(model=model, tokenizer=tokenizer, intents=intents, class_weights=weights, train_seconds=0.0,
                       train_samples=0, steps=0)


def keep_fit(
    path: Path, result: TrainResult, data: IntentData, *, model_config: ModelConfig, train_config: TrainConfig,
    seed: int,
) -> None:
    """Keep a finished fit for a resume: its weights at ``path`` (safetensors) and, beside them in
    ``path.json``, its timings and what it was trained with. Rank 0 writes; every rank holds the same."""
    from safetensors.torch import save_model

    from intentbal.io.atomic import atomic_file, atomic_write_text, json_text
    from intentbal.training import distributed

    if not distributed.is_main():
        return
    numbers = {"fingerprint": run_fingerprint(data, model_config, train_config, seed, distributed.world_size()),
               "train_seconds": result.train_seconds, "train_samples": result.train_samples, "steps": result.steps,
               "warnings": result.warnings, "history": [r.to_dict() for r in result.history]}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        save_model(result.model, str(tmp))
    atomic_write_text(_numbers_path(path), json_text(numbers))  # last: weights without numbers are not used


def kept_fit(
    path: Path, data: IntentData, *, model_config: ModelConfig, train_config: TrainConfig, seed: int,
) -> TrainResult | None:
    """The fit :func:`keep_fit` kept at ``path``, on this rank's device, resumed at its last step;
    None when there is none. An error when it was trained with other data, settings or seed."""
    from safetensors.torch import load_model

    from intentbal.training import distributed

    if not (path.is_file() and _numbers_path(path).is_file()):
        return None
    try:
        numbers = json.loads(_numbers_path(path).read_text(encoding="utf-8"))
        fingerprint = numbers["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise damaged_checkpoint(path, exc) from exc
    if fingerprint != run_fingerprint(data, model_config, train_config, seed, distributed.world_size()):
        raise IntentbalError(
            f"checkpoint {path}: expected one made with the same data, config and seed, found "
            "one from a different run; resume with the original settings or delete the checkpoint"
        )
    result = untrained(data, model_config=model_config, train_config=train_config)
    try:
        load_model(result.model, str(path))
    except Exception as exc:  # safetensors raises plain Exceptions for a damaged file
        raise damaged_checkpoint(path, exc) from exc
    result.model.to(distributed.device())
    result.train_seconds, result.train_samples = numbers["train_seconds"], numbers["train_samples"]
    result.steps = result.resumed_from = numbers["steps"]
    result.warnings = list(numbers["warnings"])
    result.history = [EpochRecord(**r) for r in numbers.get("history", [])]
    return result


def damaged_checkpoint(path: Path, exc: BaseException) -> IntentbalError:
    """The one line for a checkpoint that cannot be read back."""
    from intentbal.errors import first_line

    return IntentbalError(f"checkpoint {path}: expected a training state to resume from, found it damaged "
                          f"({type(exc).__name__}: {first_line(exc)}); delete it and train again without --resume")


def _numbers_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def run_fingerprint(data: IntentData, model: ModelConfig, train: TrainConfig, seed: int, world: int) -> str:
    """What a checkpoint depends on; a resume with anything else would not reproduce the run."""
    h = hashlib.sha256()
    settings = {"model": model.model_dump(mode="json"), "seed": seed, "world": world,
                "train": train.model_dump(mode="json", exclude={"save_steps"})}
    h.update(json.dumps(settings, sort_keys=True).encode())
    for text, intent in zip(data.texts, data.intents):
        h.update(f"{intent}\t{text}\n".encode())
    if data.weights is not None:
        h.update(json.dumps(data.weights).encode())
    return h.hexdigest()


@dataclass(kw_only=True)
class Checkpoint:
    """The training state in a folder: weights in safetensors, the rest loaded without pickle."""

    folder: Path | None
    fingerprint: str
    smote: Any = None  # the embedding memory of train.embedding_smote, saved with the rest

    def save(
        self, model: Any, optimizer: Any, scheduler: Any, step: int, samples: int, elapsed: float, meter: LossMeter,
        history: list[EpochRecord],
    ) -> None:
        import torch
        from safetensors.torch import save_model

        from intentbal.io.folders import atomic_dir

        if self.folder is None:
            return
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "rng": torch.get_rng_state(), "step": step, "samples": samples, "elapsed": elapsed,
                 "fingerprint": self.fingerprint, "loss": meter.state(), "history": [r.to_dict() for r in history],
                 **({"smote": self.smote.state()} if self.smote else {})}
        with atomic_dir(self.folder, kind="checkpoint") as tmp:
            save_model(model, str(tmp / "model.safetensors"))
            torch.save(state, tmp / "state.pt")
        log.debug("checkpoint: step %d written to %s", step, self.folder)

    def restore(
        self, model: Any, optimizer: Any, scheduler: Any, meter: LossMeter,
    ) -> tuple[int, int, float, list[EpochRecord]]:
        """Load the saved state into the objects; ``(step, samples, elapsed, history)``, zeros and
        an empty history without one."""
        import torch
        from safetensors.torch import load_model

        if self.folder is None or not (self.folder / "state.pt").is_file():
            return 0, 0, 0.0, []
        try:
            state = torch.load(self.folder / "state.pt", weights_only=True)
            fingerprint = state["fingerprint"]
        except Exception as exc:  # torch.load raises many types for a damaged file
            raise damaged_checkpoint(self.folder, exc) from exc
        if fingerprint != self.fingerprint:
            raise IntentbalError(
                f"checkpoint {self.folder}: expected one made with the same data, config and seed, found "
                "one from a different run; resume with the original settings or delete the checkpoint"
            )
        try:
            load_model(model, str(self.folder / "model.safetensors"))
        except Exception as exc:  # safetensors raises plain Exceptions (and OSError when missing)
            raise damaged_checkpoint(self.folder, exc) from exc
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if self.smote is not None and state.get("smote", {}).get("memory") is not None:
            self.smote.load(state["smote"])
        if "loss" in state:  # checkpoints from before the loss was recorded start their history here
            meter.load(state["loss"])
        history = [EpochRecord(**r) for r in state.get("history", [])]
        return state["step"], state["samples"], state["elapsed"], history
