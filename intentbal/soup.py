"""A uniform model soup (Wortsman et al., 2022): several fine-tunes averaged into one model.

Every member starts from the same pretrained weights and differs only in its seed (batch
order, dropout, any random head), so the members stay close enough for their weights to
be averaged. The result is one ordinary model: an ensemble's steadier decisions at the
cost of one model's prediction time, for ``size`` times the training.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from intentbal.config import ModelConfig, TrainConfig
from intentbal.data import IntentData
from intentbal.train import Progress, TrainResult, fine_tune, untrained


def train_soup(
    data: IntentData,
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    seed: int,
    progress: Progress | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
) -> TrainResult:
    """Fine-tune ``train_config.soup`` members with seeds ``seed, seed + 1, ...``; average them.

    With one member this is :func:`intentbal.train.fine_tune`. With more, each member
    checkpoints in its own subfolder of ``checkpoint_dir`` and a finished member's weights
    are kept beside them, so ``resume=True`` retrains only what a crash interrupted. Only
    floating-point weights are averaged; the returned model is the last member's, holding
    the mean, and its timings are the members' sums.
    """
    size = train_config.soup
    if size == 1:
        return fine_tune(data, model_config=model_config, train_config=train_config, seed=seed,
                         progress=progress, checkpoint_dir=checkpoint_dir, resume=resume)
    total: dict[str, Any] = {}
    results: list[TrainResult] = []
    skeleton: TrainResult | None = None
    for k in range(size):
        folder = checkpoint_dir / f"member-{k}" if checkpoint_dir else None
        kept = checkpoint_dir / f"member-{k}.safetensors" if checkpoint_dir else None
        if resume and kept is not None and kept.is_file():
            skeleton = skeleton or untrained(data, model_config=model_config, train_config=train_config)
            _load(skeleton.model, kept)
            _accumulate(total, skeleton.model)
            continue
        result = fine_tune(data, model_config=model_config, train_config=train_config, seed=seed + k,
                           progress=_stage(progress, f"train model {k + 1} of {size}"),
                           checkpoint_dir=folder, resume=resume)
        _keep(kept, result.model)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)  # its mid-training state is no longer needed
        _accumulate(total, result.model)
        results.append(result)
    last = results[-1] if results else skeleton
    assert last is not None  # with no member trained here, every member was loaded into the skeleton
    _load_mean(last.model, total, size)
    return replace(
        last,
        train_seconds=sum(r.train_seconds for r in results),
        train_samples=sum(r.train_samples for r in results),
        steps=sum(r.steps for r in results),
        resumed_from=sum(r.resumed_from for r in results),
    )


def _stage(progress: Progress | None, name: str) -> Progress | None:
    return None if progress is None else (lambda _member_stage, done, total: progress(name, done, total))


def _load(model: Any, path: Path) -> None:
    from safetensors.torch import load_model

    load_model(model, str(path))


def _keep(path: Path | None, model: Any) -> None:
    """Keep a finished member's weights for a resume (rank 0 only: every rank holds the same)."""
    from intentbal import distributed

    if path is None or not distributed.is_main():
        return
    from safetensors.torch import save_model

    from intentbal.outputs import atomic_file

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        save_model(model, str(tmp))


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
