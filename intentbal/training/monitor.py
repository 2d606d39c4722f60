"""Watching a run: the loss summed on the device, divergence stops, and the epoch records."""

from __future__ import annotations

import math
from typing import Any

from intentbal.errors import TrainingDiverged
from intentbal.training.results import EpochRecord


def epochs_of(losses: Any, steps: range, per_epoch: int, recall: float | None) -> list[EpochRecord]:
    """The curve of the bucketed loop, from its per-step losses: each epoch's mean loss (of the
    steps this process ran), and ``recall`` (validation, measured once at the end) on the last."""
    values = losses.float().cpu().tolist()
    ends = [step for step in steps if step % per_epoch == 0 or step == steps.stop - 1]
    records, first = [], steps.start
    for end in ends:
        chunk = values[first - steps.start : end - steps.start + 1]
        records.append(EpochRecord(epoch=round(end / per_epoch, 4), step=end, loss=sum(chunk) / len(chunk),
                                   validation_macro_recall=recall if end == ends[-1] else None))
        first = end + 1
    return records


def diverged(step: int, per_epoch: int, learning_rate: float) -> TrainingDiverged:
    """The one line for a run whose loss stopped being a number at ``step``."""
    return TrainingDiverged(
        f"training diverged: expected a finite loss, found nan or inf from step {step} (epoch "
        f"{math.ceil(step / per_epoch)}) on; lower train.learning_rate ({learning_rate:g}, e.g. to "
        f"{learning_rate / 10:g}) or check the data; nothing was written"
    )


def check_finite_weights(model: Any, *, learning_rate: float | None = None) -> None:
    """Refuse a model with a weight that is not a finite number: it must never be saved."""
    import torch

    if not isinstance(model, torch.nn.Module):
        return
    bad = next((name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())), None)
    if bad is not None:
        rate = f" ({learning_rate:g})" if learning_rate is not None else ""
        raise TrainingDiverged(f"training diverged: expected finite weights, found nan or inf in {bad}; lower "
                               f"train.learning_rate{rate} or check the data; nothing was written")


class LossMeter:
    """The training loss summed on the device, so reading it (a sync) happens once an epoch; the
    first step whose loss is not finite is kept there too, and reading it stops a diverged run."""

    def __init__(self, device: Any, rank: int, world: int, *, per_epoch: int = 1, learning_rate: float = 0.0) -> None:
        import torch

        self.rank, self.world = rank, world
        self.per_epoch, self.learning_rate = per_epoch, learning_rate
        self.total = torch.zeros((), dtype=torch.float32, device=device)
        self.first_bad = torch.zeros((), dtype=torch.int64, device=device)  # 0: every loss so far was finite
        self.steps = 0

    def add(self, loss: Any, step: int = 0) -> None:
        import torch

        self.total += loss
        self.first_bad.masked_fill_((self.first_bad == 0) & ~torch.isfinite(loss), step)
        self.steps += 1

    def check_finite(self) -> None:
        """A :class:`TrainingDiverged` when a loss so far was not finite (a sync)."""
        bad = int(self.first_bad.item())
        if bad:
            raise diverged(bad, self.per_epoch, self.learning_rate)

    def check_losses(self, losses: Any, steps: range) -> None:
        """:meth:`check_finite` for the per-step ``losses`` of ``steps`` (the bucketed loop's)."""
        import torch

        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            raise diverged(steps.start + int(bad[0]), self.per_epoch, self.learning_rate)

    def running(self) -> float:
        """This rank's mean loss so far in the epoch (for a bar; a sync)."""
        return float(self.total.item()) / max(self.steps, 1)

    def epoch_mean(self) -> float:
        """The mean loss of the epoch's steps over every rank; starts the next epoch."""
        self.check_finite()
        total = self.total.clone()
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(total)
        mean = float(total.item()) / (max(self.steps, 1) * self.world)
        self.total.zero_()
        self.steps = 0
        return mean

    def combine(self) -> None:
        """Before a checkpoint (every rank): rank 0 holds the sum of all ranks, the others none, so
        the sum rank 0 saves is the whole epoch's so far."""
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(self.total)
            if self.rank:
                self.total.zero_()

    def state(self) -> dict[str, Any]:
        return {"total": self.total.item(), "steps": self.steps}

    def load(self, state: dict[str, Any]) -> None:
        """Continue from rank 0's saved :meth:`state` (the other ranks' share is in it)."""
        self.total.fill_(state["total"] if self.rank == 0 else 0.0)
        self.steps = state["steps"]
