"""The bucketed training loop: steps of a few fixed shapes that never wait for the host.

The eager loop of :func:`intentbal.training.loop.fine_tune` pads each batch on the host to its longest
text, copies it to the device, and transformers' SDPA mask helper reads the 2-D attention mask
back (``padding_mask.all()``), so every step waits for the one before. Here every token id, length
and target goes to the device once. A step gathers its rows there, padded to one of a few widths
(:func:`widths`) and always to the full batch size with filler rows of weight 0, so a run has a
handful of step shapes; the 4-D additive attention mask is built on the device, the learning rate
is read from a table on the device, gradients are clipped without reading their norm back, and
the losses stay on the device. On CUDA each width's step, fused AdamW included, is captured once as
a CUDA graph after a few real eager steps and replayed from then on.

Every step trains on the rows the eager loop would (the same stream of batches, shuffled or
balanced), with the same learning rates; with dropout
off both loops give the same losses and weights on the CPU, to rounding. Checkpoints are written in
the eager loop's format (a resume keeps the run's ``train.step``: the checkpoint's fingerprint
holds it).

torch.compile is not used: at batch size 32 a GPU step is bound by kernel launches, which the
graphs remove, and compiling every width's forward and backward would add minutes to runs that
take seconds to a few minutes.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from intentbal.config import TrainConfig
from intentbal.training.plan import TrainingPlan
from intentbal.training.step import batch_loss

BASE_WIDTHS = (16, 32, 48, 64)  # most utterances are short: fine steps up to 64, doubling above
WARMUP_STEPS = 3  # eager steps of a width before its graph is captured, as PyTorch's examples warm up

Progress = Callable[[str, int, int], None]


@dataclass(kw_only=True)
class Trained:
    samples: int  # real rows trained on so far, the resumed ones included
    losses: Any  # each step's loss (fp32, on the device), in step order


def widths(max_length: int) -> tuple[int, ...]:
    """The padded widths for texts of at most ``max_length`` tokens: 16, 32, 48 and 64, then
    doubling, each below ``max_length``, and ``max_length`` itself last."""
    chosen = [w for w in BASE_WIDTHS if w < max_length]
    wide = BASE_WIDTHS[-1] * 2
    while wide < max_length:
        chosen.append(wide)
        wide *= 2
    return (*chosen, max_length)


def width_for(longest: int, choices: Sequence[int]) -> int:
    """The narrowest of ``choices`` (ascending) that holds ``longest`` tokens."""
    return choices[min(bisect.bisect_left(choices, longest), len(choices) - 1)]


def additive_mask(mask: Any, dtype: Any) -> Any:
    """The 4-D additive attention mask ``(batch, 1, width, width)`` that a 2-D 0/1 ``mask`` means:
    0 where a token may be attended to, the most negative ``dtype`` value where it is padding.
    Built on the mask's device; transformers takes a 4-D mask as it is, without reading it back."""
    import torch

    blocked = (1 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
    return blocked.expand(-1, 1, mask.shape[1], -1)


@dataclass(kw_only=True)
class Rows:
    """Every training row on the device, padded to the widest width, and one filler row after
    them (index ``filler``): a pad token, length 1 (so no attention row is empty), weight 0."""

    tokens: Any  # (rows + 1, widest) int64
    lengths: Any  # (rows + 1,)
    targets: Any  # (rows + 1,)
    weights: Any  # (rows + 1,) 1 for a real row, 0 for the filler
    filler: int


def to_device(ids: list[list[int]], targets: Any, *, pad_id: int, width: int, device: Any,
              row_weights: Any = None) -> Rows:
    """``ids`` (each at most ``width`` tokens), their ``targets`` and weights in the loss (``row_weights``,
    None for 1) as :class:`Rows` on ``device``."""
    import numpy as np
    import torch

    n = len(ids)
    tokens = np.full((n + 1, width), pad_id, dtype=np.int64)
    lengths = np.ones(n + 1, dtype=np.int64)
    for row, seq in enumerate(ids):
        tokens[row, : len(seq)] = seq
        lengths[row] = len(seq)
    weights = torch.ones(n + 1)
    if row_weights is not None:
        weights[:n] = torch.as_tensor(row_weights, dtype=torch.float32)
    weights[n] = 0
    return Rows(tokens=torch.from_numpy(tokens).to(device), lengths=torch.from_numpy(lengths).to(device),
                targets=torch.cat([torch.as_tensor(targets, dtype=torch.int64), torch.zeros(1,
                                                                                            dtype=torch.int64)]).to(device),
                weights=weights.to(device), filler=n)


@dataclass(kw_only=True)
class StepSchedule:
    """The steps' batches: row indices on the device, each step filled to the batch size with the filler."""

    rows: Any  # (steps, batch_size) int64 on the device
    widths: list[int]
    real: list[int]  # real rows in each step


def plan_steps(batches: Iterator[list[int]], steps: int, *, ids: list[list[int]], batch_size: int,
         choices: Sequence[int], filler: int, device: Any) -> StepSchedule:
    """The next ``steps`` batches of ``batches``, each padded to the narrowest of ``choices`` that holds
    its longest text; one copy to the device for the whole run."""
    import numpy as np
    import torch

    rows = np.full((steps, batch_size), filler, dtype=np.int64)
    step_widths, real = [], []
    for step in range(steps):
        batch = next(batches)
        rows[step, : len(batch)] = batch
        step_widths.append(width_for(max(len(ids[i]) for i in batch), choices))
        real.append(len(batch))
    return StepSchedule(rows=torch.from_numpy(rows).to(device), widths=step_widths, real=real)


def train(
    model: Any, optimizer: Any, scheduler: Any, batches: Iterator[list[int]], *, plan: TrainingPlan,
    ids: list[list[int]], targets: Any, pad_id: int, max_length: int, loss_fn: Any, config: TrainConfig,
    device: Any, steps: range, row_weights: Any = None, bottom: Any = None, samples: int = 0,
    save: Callable[[int, int], None] | None = None, progress: Progress | None = None, graphs: bool | None = None,
) -> Trained:
    """Train ``model`` for ``steps`` (1-based, ending at the run's last step) on the next batches of
    ``batches``, as the eager loop would (the same :func:`~intentbal.training.step.batch_loss`);
    ``save(step, samples)`` every ``config.save_steps`` steps before the last. CUDA graphs as
    ``plan.cuda_graphs`` says, unless ``graphs`` says otherwise. ``bottom``: the frozen lower
    layers' cached states (:class:`~intentbal.training.frozen.CachedBottom`), selected by row.

    ``optimizer`` and ``scheduler`` are the eager loop's AdamW (fused on CUDA) and warm-up schedule,
    resumed or fresh.
    """
    choices = widths(max_length)
    rows = to_device(ids, targets, pad_id=pad_id, width=choices[-1], device=device, row_weights=row_weights)
    schedule = plan_steps(batches, len(steps), ids=ids, batch_size=config.batch_size, choices=choices,
                          filler=rows.filler, device=device)
    graphs = plan.cuda_graphs if graphs is None else graphs
    last = steps.stop - 1
    runner = Runner(model, optimizer, scheduler, rows, plan=plan, loss_fn=loss_fn, bottom=bottom, device=device,
                    steps=steps, graphs=graphs)
    try:
        for i, step in enumerate(steps):
            runner.step(schedule.rows[i], schedule.widths[i])
            samples += schedule.real[i]
            if progress:
                progress("train", step, last)
            if save and config.save_steps and step % config.save_steps == 0 and step < last:
                with runner.as_eager(step):
                    save(step, samples)
        losses = runner.finish(steps)
    finally:
        runner.close()
    return Trained(samples=samples, losses=losses)


class Runner:
    """One model's bucketed steps: the eager step, its CUDA graph per width, and the state they share."""

    def __init__(self, model: Any, optimizer: Any, scheduler: Any, rows: Rows, *, plan: TrainingPlan, loss_fn: Any,
                 bottom: Any, device: Any, steps: range, graphs: bool) -> None:
        import torch

        self.model, self.optimizer, self.scheduler, self.rows = model, optimizer, scheduler, rows
        self.plan, self.loss_fn, self.bottom = plan, loss_fn, bottom
        self.positions = torch.arange(rows.tokens.shape[1], device=device)
        # The CPU's AdamW takes a float64 rate exactly as the eager loop's Python float; CUDA's fused one wants fp32.
        lr_dtype = torch.float64 if device.type == "cpu" else torch.float32
        first, last = steps.start, steps.stop - 1
        self.lr_table = learning_rates(scheduler, last)
        self.lr_rows = [torch.tensor(r, dtype=lr_dtype, device=device) for r in self.lr_table]
        self.lr = [torch.tensor(r[first - 1], dtype=lr_dtype, device=device) for r in self.lr_table]
        self.eager_lr = [group["lr"] for group in optimizer.param_groups]
        for group, lr in zip(optimizer.param_groups, self.lr):
            group["lr"] = lr
        self.index = torch.full((1,), first - 1, dtype=torch.int64, device=device)  # the step's row in the tables
        self.history = torch.zeros(last, device=device)
        mask_dtype = torch.bfloat16 if plan.bf16 else torch.float32
        self.hook = use_4d_mask(model, mask_dtype)
        self.graphs: dict[int, tuple[Any, Any]] = {}
        self.eager_steps: Counter[int] = Counter()
        self.side = torch.cuda.Stream(device) if graphs else None

    def step(self, batch: Any, width: int) -> None:
        """Train one step on ``batch`` (row indices on the device) padded to ``width``."""
        captured = self.graphs.get(width)
        if captured is not None:
            graph, static = captured
            static.copy_(batch)
            graph.replay()
            return
        self._on_side_stream(batch, width)
        self.eager_steps[width] += 1
        if self.side is not None and self.eager_steps[width] == WARMUP_STEPS:
            self._capture(width, like=batch)

    def _train_step(self, batch: Any, width: int) -> None:
        """Forward, backward, clipping, the scheduled learning rate and AdamW: device work only."""
        import torch

        r = self.rows
        self.optimizer.zero_grad(set_to_none=True)  # a graph's gradients are its own; never add to them
        input_ids = r.tokens.narrow(1, 0, width).index_select(0, batch)
        mask = (self.positions[:width] < r.lengths.index_select(0, batch)[:, None]).long()
        if self.bottom is not None:  # the frozen layers' states of these rows, gathered on the device
            self.bottom.select(batch)
        loss, _ = batch_loss(self.plan, self.model, self.loss_fn, input_ids, mask, r.targets.index_select(0, batch),
                             row_weights=r.weights.index_select(0, batch))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        for lr, table in zip(self.lr, self.lr_rows):
            lr.copy_(table.index_select(0, self.index).squeeze(0))
        self.optimizer.step()
        self.history.index_copy_(0, self.index, loss.detach().float().unsqueeze(0))
        self.index.add_(1)

    def _on_side_stream(self, batch: Any, width: int) -> None:
        """An eager step; on CUDA on a side stream, where PyTorch wants the steps before a capture."""
        import torch

        if self.side is None:
            self._train_step(batch, width)
            return
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            self._train_step(batch, width)
        torch.cuda.current_stream().wait_stream(self.side)

    def _capture(self, width: int, like: Any) -> None:
        """Record ``width``'s step as a CUDA graph (recording runs nothing); each replay's batch is
        copied into its ``static`` row indices first."""
        import torch

        static = torch.zeros_like(like)
        self.optimizer.zero_grad(set_to_none=True)  # the graph's backward then allocates its gradients in its pool
        graph = torch.cuda.CUDAGraph()
        with _capturable(self.optimizer), torch.cuda.graph(graph):
            self._train_step(static, width)
        self.optimizer.zero_grad(set_to_none=True)
        self.graphs[width] = (graph, static)

    def finish(self, steps: range) -> Any:
        """Wait for the device; each of ``steps``' losses."""
        import torch

        if self.history.device.type == "cuda":
            torch.cuda.synchronize(self.history.device)
        return self.history[steps.start - 1 : steps.stop - 1]

    @contextmanager
    def as_eager(self, step: int) -> Iterator[None]:
        """The optimizer and scheduler as the eager loop leaves them after ``step``, for a checkpoint."""
        for group, table in zip(self.optimizer.param_groups, self.lr_table):
            group["lr"] = table[step]
        self.scheduler.last_epoch = step
        try:
            yield
        finally:
            for group, lr in zip(self.optimizer.param_groups, self.lr):
                group["lr"] = lr

    def close(self) -> None:
        """Drop the graphs and the mask hook; the optimizer holds Python learning rates again."""
        self.hook.remove()
        if self.bottom is not None:
            self.bottom.select(None)
        self.graphs.clear()
        self.optimizer.zero_grad(set_to_none=True)
        for group, lr in zip(self.optimizer.param_groups, self.eager_lr):
            group["lr"] = lr


def learning_rates(scheduler: Any, total: int) -> list[list[float]]:
    """Each parameter group's learning rate at steps 0..``total`` of ``scheduler`` (a LambdaLR such as
    transformers' linear warm-up schedule): ``base_lr * lambda(step)``, the values it would set."""
    lambdas = zip(scheduler.base_lrs, scheduler.lr_lambdas)
    return [[base * fn(step) for step in range(total + 1)] for base, fn in lambdas]


def use_4d_mask(model: Any, dtype: Any) -> Any:
    """Hand ``model``'s encoder the :func:`additive_mask` of the 2-D mask ``model`` is called with
    (the prototype head still pools with the 2-D one); the hook's handle, whose ``remove()`` undoes it."""
    return encoder_of(model).register_forward_pre_hook(
        lambda _module, args, kwargs: (args, _with_4d_mask(kwargs, dtype)), with_kwargs=True)


def encoder_of(model: Any) -> Any:
    """The transformer in ``model`` that turns the attention mask into its own: the prototype
    head's encoder, or a standard head's base model."""
    return model.encoder if hasattr(model, "embed") else model.base_model


def _with_4d_mask(kwargs: dict[str, Any], dtype: Any) -> dict[str, Any]:
    mask = kwargs.get("attention_mask")
    if mask is None or mask.dim() != 2:
        return kwargs
    return {**kwargs, "attention_mask": additive_mask(mask, dtype)}


@contextmanager
def _capturable(optimizer: Any) -> Iterator[None]:
    """AdamW marked capturable while a graph records it. Fused AdamW computes the same either way,
    and marked so outside a capture it warns at the next eager step."""
    flags = [group["capturable"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["capturable"] = True
    try:
        yield
    finally:
        for group, flag in zip(optimizer.param_groups, flags):
            group["capturable"] = flag
