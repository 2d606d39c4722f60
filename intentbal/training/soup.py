"""A uniform model soup (Wortsman et al., 2022): several fine-tunes averaged into one model.

Every member starts from the same pretrained weights and differs only in its seed (batch
order, dropout, any random head), so the members stay close enough for their weights to
be averaged. The result is one ordinary model: an ensemble's steadier decisions at the
cost of one model's prediction time, for ``size`` times the training.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from intentbal.config import ModelConfig, TrainConfig
from intentbal.data.types import IntentData
from intentbal.progress import Progress, suffixed
from intentbal.training.checkpoint import untrained
from intentbal.training.loop import fine_tune
from intentbal.training.results import EpochRecord, TrainResult


def train_soup(
    data: IntentData,
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    seed: int,
    progress: Progress | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    validation: IntentData | None = None,
    descriptions: Mapping[str, str] | None = None,
    initial: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Fine-tune ``train_config.soup`` members with seeds ``seed, seed + 1, ...``; average them.

    With one member this is :func:`intentbal.training.loop.fine_tune`. With more, each member
    checkpoints in its own subfolder of ``checkpoint_dir`` and a finished member's weights
    are kept beside them, so ``resume=True`` retrains only what a crash interrupted. Only
    floating-point weights are averaged; the returned model is the last member's, holding
    the mean, and its timings are the members' sums. ``initial``: the weights every member starts
    from instead of the pretrained ones (see :func:`~intentbal.training.loop.fine_tune`). Its
    ``history`` holds every member's training curve, each record marked with its member's index:
    a member that failed to learn shows there, where the mean alone would hide it.
    """
    size = train_config.soup
    if size == 1:
        return fine_tune(data, model_config=model_config, train_config=train_config, seed=seed,
                         progress=progress, checkpoint_dir=checkpoint_dir, resume=resume, validation=validation,
                         descriptions=descriptions, initial=initial)
    total: dict[str, Any] = {}
    results: list[TrainResult] = []
    history: list[EpochRecord] = []
    skeleton: TrainResult | None = None
    for k in range(size):
        folder = checkpoint_dir / f"member-{k}" if checkpoint_dir else None
        kept = checkpoint_dir / f"member-{k}.safetensors" if checkpoint_dir else None
        if resume and kept is not None and kept.is_file():
            skeleton = skeleton or untrained(data, model_config=model_config, train_config=train_config)
            history += _load(skeleton.model, kept)
            _accumulate(total, skeleton.model)
            continue
        result = fine_tune(data, model_config=model_config, train_config=train_config, seed=seed + k,
                           progress=suffixed(progress, f"model {k + 1} of {size}"),
                           checkpoint_dir=folder, resume=resume, validation=validation, descriptions=descriptions,
                           initial=initial)
        member = [replace(r, member=k) for r in result.history]
        _keep(kept, result.model, member)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)  # its mid-training state is no longer needed
        _accumulate(total, result.model)
        results.append(result)
        history += member
    last = results[-1] if results else skeleton
    assert last is not None  # with no member trained here, every member was loaded into the skeleton
    _load_mean(last.model, total, size)
    return replace(
        last,
        train_seconds=sum(r.train_seconds for r in results),
        train_samples=sum(r.train_samples for r in results),
        steps=sum(r.steps for r in results),
        resumed_from=sum(r.resumed_from for r in results),
        history=history,
    )


def _load(model: Any, path: Path) -> list[EpochRecord]:
    """Load a kept member's weights into ``model``; its history, kept in the file's metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_model

    from intentbal.training.checkpoint import damaged_checkpoint

    try:
        load_model(model, str(path))
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        return [EpochRecord(**r) for r in json.loads(metadata.get("history", "[]"))]
    except Exception as exc:  # safetensors raises plain Exceptions for a damaged file
        raise damaged_checkpoint(path, exc) from exc


def _keep(path: Path | None, model: Any, history: list[EpochRecord]) -> None:
    """Keep a finished member's weights, its history in their metadata, for a resume (rank 0 only:
    every rank holds the same)."""
    from intentbal.training import distributed

    if path is None or not distributed.is_main():
        return
    from safetensors.torch import save_model

    from intentbal.io.atomic import atomic_file

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        save_model(model, str(tmp), metadata={"history": json.dumps([r.to_dict() for r in history])})


def _accumulate(total: dict[str, Any], model: Any) -> None:
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            value = tensor.detach().double()
            total[name] = total[name] + value if name in total else value.clone()


def _load_mean(model: Any, total: dict[str, Any], size: int) -> None:
    import torch

    state = model.state_dict()
    with torch.no_grad():
        for name, value in total.items():
            state[name].copy_((value / size).to(state[name].dtype))
