"""Running under ``torchrun`` (or any launcher that sets the same variables): process group, rank and sharing.

Launchers describe the job in environment variables (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); a plain run has none and is rank 0 of 1.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

T = TypeVar("T")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup() -> tuple[int, int]:
    """Join the launcher's process group if there is one; returns ``(rank, world_size)``.

    GPUs use NCCL, one per local rank; CPUs use gloo.
    """
    if world_size() <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def is_main() -> bool:
    """True on rank 0, the only rank that writes outputs."""
    return int(os.environ.get("RANK", "0")) == 0


def share(value: T) -> T:
    """Rank 0's ``value`` on every rank (a no-op in a single process)."""
    if world_size() <= 1:
        return value
    import torch.distributed as dist

    box: list[Any] = [value if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def device() -> Any:
    """This rank's device: its GPU when there is one, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def wrap(model: Any) -> Any:
    """The model wrapped for data-parallel training when there are several ranks."""
    if world_size() <= 1:
        return model
    import torch
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.cuda.current_device()] if torch.cuda.is_available() else None
    return DistributedDataParallel(model, device_ids=ids)


def teardown() -> None:
    if world_size() > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
