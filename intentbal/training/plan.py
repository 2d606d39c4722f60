"""The training plan: how a fine-tune runs, chosen once from the config and the machine.

Every choice the training loops would otherwise branch on is made here, up front: which loop runs
the steps (the eager loop pads each batch on the host; the bucketed loop pads on the device to a few
widths and, on a GPU, replays each width as a CUDA graph), what a step's forward computes (the
logits; with embedding SMOTE also synthetic rows; with the contrastive term also the embeddings and
the intent vectors), the arithmetic (the one bf16 rule: bf16 where the GPU or CPU has it natively)
and whether rows carry their own weight in the loss. Both loops then run the same step
(:func:`intentbal.training.step.batch_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from intentbal.config import TrainConfig
from intentbal.errors import IntentbalError

Loop = Literal["eager", "bucketed"]
Forward = Literal["logits", "smote", "contrastive"]


@dataclass(frozen=True, kw_only=True)
class TrainingPlan:
    """The choices of one fine-tune."""

    loop: Loop
    forward: Forward
    bf16: bool  # bf16 autocast around the encoder; the head, pooling and loss stay fp32
    cuda_graphs: bool  # the bucketed loop captures each width's step as a CUDA graph
    processes: int
    row_weights: bool  # rows weigh in the loss (pseudo-labelled and description rows)


def uses_bf16(precision: str, *, bf16_supported: bool) -> bool:
    """bf16 autocast: asked for, or ``auto`` on a device with native bf16 arithmetic (:func:`native_bf16`)."""
    return precision == "bf16" or (precision == "auto" and bf16_supported)


def native_bf16(device_type: str) -> bool:
    """Whether the training device computes in bf16 natively: a GPU that torch says supports it, or a
    CPU with AVX512-BF16 or AMX instructions (:func:`cpu_has_native_bf16`). Elsewhere bf16 would be
    emulated, slower than fp32, so ``auto`` keeps fp32 there."""
    import torch

    if device_type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return device_type == "cpu" and cpu_has_native_bf16()


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU's flags (``/proc/cpuinfo``, or the ``cpuinfo`` text given) include ``avx512_bf16``
    or ``amx_bf16``; False where they cannot be read (macOS, Windows)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags = next((line.partition(":")[2].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def plan_training(
    config: TrainConfig, *, device_type: str, processes: int, row_weights: bool, prototype_head: bool,
    bf16_supported: bool = False,
) -> TrainingPlan:
    """The plan for ``config`` on a ``device_type`` device ("cpu", "cuda") in ``processes`` processes.

    ``train.step``: ``eager`` always takes the eager loop; ``bucketed`` the bucketed loop, an error
    with several processes or a forward other than the logits (SMOTE and the contrastive term build
    their batches on the host); ``auto`` the bucketed loop on a single GPU when it can, else the
    eager loop. Frozen lower layers and row weights run in either loop.
    """
    forward: Forward = "smote" if config.embedding_smote else "contrastive" if config.contrastive_weight else "logits"
    if (needs_prototypes := config.prototype_options()) and not prototype_head:
        key = needs_prototypes[0].split("=")[0]
        raise IntentbalError(f"{key}: expected model.head=prototype (it works on the prototype head's sentence "
                             f"embeddings), found the standard head; set model.head=prototype or turn {key} off")
    eager_only = processes > 1 or forward != "logits"
    if config.step == "bucketed" and eager_only:
        found = (f"{processes} processes" if processes > 1 else "train.embedding_smote on" if forward == "smote"
                 else "train.contrastive_weight set")
        raise IntentbalError(f"train.step=bucketed: expected a single process without embedding SMOTE or the "
                             f"contrastive term, found {found}; set train.step=auto, which trains those with the "
                             "eager loop")
    bucketed = config.step == "bucketed" or (config.step == "auto" and device_type == "cuda" and not eager_only)
    return TrainingPlan(
        loop="bucketed" if bucketed else "eager", forward=forward,
        bf16=uses_bf16(config.precision, bf16_supported=bf16_supported),
        cuda_graphs=bucketed and device_type == "cuda", processes=processes, row_weights=row_weights,
    )
