"""The optimiser of a fine-tune and of the contrastive stage: AdamW with a linear warm-up and decay."""

from __future__ import annotations

from typing import Any

from intentbal.config import TrainConfig


def make_optimiser(module: Any, config: TrainConfig, total: int, device: Any) -> tuple[Any, Any]:
    """``(optimizer, scheduler)`` for ``module``'s parameters over ``total`` steps: AdamW at
    ``train.learning_rate`` (fused: one kernel over every parameter, on a GPU and on a CPU) with
    :func:`param_groups`, the rate rising linearly over the first ``train.warmup_ratio`` of the
    steps, then falling linearly to 0."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    # fused on a CPU too: the same update, several times faster than the per-tensor loop there
    fused: dict[str, Any] = {"fused": True} if device.type in ("cuda", "cpu") else {}
    optimizer = torch.optim.AdamW(param_groups(module, config.weight_decay), lr=config.learning_rate, **fused)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total), total)
    return optimizer, scheduler


def param_groups(module: Any, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW's parameter groups: ``weight_decay`` on weight matrices, none on biases, norms and the
    parameters ``module.no_weight_decay`` names."""
    decay: list[Any] = []
    no_decay: list[Any] = []
    exempt = set(getattr(module, "no_weight_decay", ()))
    for name, param in module.named_parameters():
        (no_decay if param.ndim < 2 or "norm" in name.lower() or name in exempt else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
