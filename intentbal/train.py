"""Fine-tuning a sequence classifier with the class-weighted loss.

A lean loop: the data are tokenised once, batches are drawn from length-sorted pools
(little padding), the loss comes from :mod:`intentbal.losses`, and every
``train.save_steps`` steps a checkpoint is written from which ``resume`` continues
exactly where the run stopped. Each epoch's mean training loss (and, given validation
data, the macro recall on it) is recorded in :attr:`TrainResult.history`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from intentbal import bucketed
from intentbal.adjust import macro_recall
from intentbal.batching import balanced_batches, encode, pad, pad_id_of, shuffled_batches
from intentbal.config import ModelConfig, TrainConfig
from intentbal.data import IntentData
from intentbal.errors import IntentbalError, TrainingDiverged
from intentbal.losses import class_weights, weighting_of
from intentbal.progress import Progress, note, shows_notes

NOTE_SECONDS = 1.0  # the bar's running loss costs a device sync: at most one a second, and only for a bar


@dataclass(frozen=True)
class EpochRecord:
    """One point of the training curve: the mean training loss over the steps of an epoch (the
    last one may be partial) and the macro recall on the validation data after its last step."""

    epoch: float  # epochs done at ``step``: 1.0, 2.0, ..., and e.g. 2.5 after half of a third
    step: int
    loss: float
    validation_macro_recall: float | None = None
    member: int = 0  # which model of a soup (train.soup) it belongs to

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    model: Any
    tokenizer: Any
    intents: list[str]
    class_weights: list[float]
    train_seconds: float
    train_samples: int
    steps: int
    resumed_from: int = 0
    warnings: list[str] = field(default_factory=list)
    history: list[EpochRecord] = field(default_factory=list)

    @property
    def train_samples_per_second(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds > 0 else 0.0


def check_trainable(data: IntentData) -> list[str]:
    """The intents of ``data``, sorted; an error when there are fewer than two."""
    intents = sorted(set(data.intents))
    if len(intents) < 2:
        raise IntentbalError(
            f"{data.source}: expected at least 2 intents to train a classifier, found "
            f"{len(intents)} ({', '.join(intents)}); add examples of other intents"
        )
    return intents


def fine_tune(
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
) -> TrainResult:
    """Fine-tune ``model_config.name_or_path`` on ``data`` and return the trained model.

    Class weights follow ``train_config.weighting`` (none with balanced batches) and are computed from the counts in
    ``data`` -- the rows the model actually trains on, augmented ones included. With a
    ``checkpoint_dir`` and ``train_config.save_steps > 0`` the state is saved there every
    ``save_steps`` steps; ``resume=True`` continues from it (same data, config and seed).
    The result's ``history`` holds each epoch's mean training loss and, with ``validation``,
    the macro recall on it after the epoch (its intents the model does not know count as
    missed); validation does not change the training. ``descriptions`` (intent to text) pull the
    prototype head's starting vectors towards them (``train.description_weight``).
    """
    import torch

    from intentbal import distributed
    from intentbal.loading import load_for_training
    from intentbal.losses import IntentLoss

    intents = check_trainable(data)
    rank, world = distributed.setup()
    device = distributed.device()
    torch.manual_seed(seed)
    tokenizer, model = load_for_training(model_config, intents)
    model.to(device)
    counts = Counter(data.intents)
    loss_fn = IntentLoss.from_config(train_config, counts, intents).to(device)
    ids, cut = encode(tokenizer, data.texts, model_config.max_length)
    index = {intent: i for i, intent in enumerate(intents)}
    targets = torch.tensor([index[i] for i in data.intents])
    row_weights = None if data.weights is None else torch.tensor(data.weights, dtype=torch.float32)

    # --- train.trainable_layers: the lower layers frozen, their output cached once per row ---
    from intentbal.frozen import freeze_lower

    frozen = freeze_lower(model, trainable=train_config.trainable_layers, rows=ids, device=device)
    # --- end train.trainable_layers
    if train_config.prototype_init and hasattr(model, "embed"):
        anchors = _anchors(tokenizer, descriptions, index, model_config.max_length, train_config.description_weight)
        init_prototypes(model, ids, targets, pad_id=pad_id_of(tokenizer), device=device, anchors=anchors)
    per_epoch = max(1, math.ceil(len(ids) / (train_config.batch_size * world)))
    total = max(1, math.ceil(train_config.epochs * per_epoch))
    optimizer, scheduler = _optimiser(model, train_config, total, device)
    smote = _smote(train_config, model, data.texts, targets.tolist(), seed)
    checkpoint = _Checkpoint(checkpoint_dir, _fingerprint(data, model_config, train_config, seed, world), smote)
    meter = _LossMeter(device, rank, world, per_epoch=per_epoch, learning_rate=train_config.learning_rate)
    done, samples, elapsed, history = (checkpoint.restore(model, optimizer, scheduler, meter) if resume
                                       else (0, 0, 0.0, []))
    step_fn = _step(distributed.wrap(_training_forward(model, smote, train_config)), loss_fn, optimizer, scheduler,
                    device, train_config.precision)
    check = _validator(validation, tokenizer, intents, model_config.max_length, train_config.batch_size)
    batches = _batches(ids, targets, train_config, torch.Generator().manual_seed(seed))
    for _ in range(done * world):  # replay the stream up to where the checkpoint stopped
        next(batches)

    model.train()
    start = time.perf_counter() - elapsed
    noted = time.monotonic()
    eager_from = done + 1
    if bucketed.applies(train_config.step, device=device, world=world, smote=smote is not None,
                        weighted=row_weights is not None, frozen=frozen is not None,
                        contrastive=bool(train_config.contrastive_weight)):  # train.step
        ran = range(done + 1, total + 1)
        fast = bucketed.train(
            model, optimizer, scheduler, batches, ids=ids, targets=targets, pad_id=pad_id_of(tokenizer),
            max_length=model_config.max_length, class_weights=loss_fn.weights, offset=loss_fn.offset,
            config=train_config, device=device, steps=ran, samples=samples, progress=progress,
            save=lambda at, n: checkpoint.save(model, optimizer, scheduler, at, n, time.perf_counter() - start,
                                               meter, history),
        )
        samples = fast.samples
        meter.check_losses(fast.losses, ran)
        history += _epochs_of(fast.losses, ran, per_epoch, check(model) if check else None)
        eager_from = total + 1  # the bucketed loop ran every step
    for step in range(eager_from, total + 1):
        group = [next(batches) for _ in range(world)]  # every rank draws the same stream
        batch = group[rank]
        mix = smote.partners(batch, step=step) if smote else None
        loss, embeddings = step_fn(*pad([ids[i] for i in batch], pad_id_of(tokenizer)), targets[batch], mix,
                                   None if row_weights is None else row_weights[batch])
        meter.add(loss, step)
        if smote:
            smote.store(batch, embeddings)
        samples += sum(len(b) for b in group)
        if step % per_epoch == 0 or step == total:
            checking = time.perf_counter()
            mean = meter.epoch_mean()  # a sync: it also stops a run whose loss diverged
            recall = check(model) if check else None
            start += time.perf_counter() - checking  # validating is not training: train_seconds leaves it out
            history.append(EpochRecord(round(step / per_epoch, 4), step, mean, recall))
            note(progress, "train", _note(history[-1]))
        elif shows_notes(progress) and time.monotonic() - noted >= NOTE_SECONDS:
            noted = time.monotonic()
            note(progress, "train", f"loss {meter.running():.4f}")
        if progress:
            progress("train", step, total)
        if train_config.save_steps and step % train_config.save_steps == 0 and step < total:
            meter.check_finite()  # a diverged state is never checkpointed
            meter.combine()
            if rank == 0:
                checkpoint.save(model, optimizer, scheduler, step, samples, time.perf_counter() - start, meter,
                                history)
    seconds = time.perf_counter() - start
    check_finite_weights(model, learning_rate=train_config.learning_rate)
    model.eval()
    warnings = [f"{cut} training text(s) longer than {model_config.max_length} tokens were truncated"] if cut else []
    # --- train.trainable_layers: the encoder back in one piece, to be saved as a full model ---
    if frozen is not None:
        frozen.restore()
        warnings += [frozen.warning] if frozen.warning else []
    # --- end train.trainable_layers
    weights = loss_weights(counts, intents, train_config)
    return TrainResult(model, tokenizer, intents, weights, seconds, samples, total,
                       resumed_from=done, warnings=warnings, history=history)


def _epochs_of(losses: Any, steps: range, per_epoch: int, recall: float | None) -> list[EpochRecord]:
    """The curve of the bucketed loop, from its per-step losses: each epoch's mean loss (of the
    steps this process ran), and ``recall`` (validation, measured once at the end) on the last."""
    values = losses.float().cpu().tolist()
    ends = [step for step in steps if step % per_epoch == 0 or step == steps.stop - 1]
    records, first = [], steps.start
    for end in ends:
        chunk = values[first - steps.start : end - steps.start + 1]
        records.append(EpochRecord(round(end / per_epoch, 4), end, sum(chunk) / len(chunk),
                                   recall if end == ends[-1] else None))
        first = end + 1
    return records


def _note(record: EpochRecord) -> str:
    recall = record.validation_macro_recall
    return f"loss {record.loss:.4f}" + ("" if recall is None else f", validation macro recall {recall:.3f}")


def loss_weights(counts: Counter[str], intents: list[str], config: TrainConfig) -> list[float]:
    """The loss's class weights in ``intents`` order, from the counts the model trains on."""
    return [float(w) for w in class_weights([counts[i] for i in intents], scheme=weighting_of(config),
                                            beta=config.beta)]


def untrained(data: IntentData, *, model_config: ModelConfig, train_config: TrainConfig) -> TrainResult:
    """An untrained model for ``data``'s intents, with the class weights :func:`fine_tune` would
    use: the skeleton that kept weights are loaded into."""
    from intentbal.loading import load_for_training

    intents = check_trainable(data)
    tokenizer, model = load_for_training(model_config, intents)
    model.eval()
    weights = loss_weights(Counter(data.intents), intents, train_config)
    return TrainResult(model, tokenizer, intents, weights, 0.0, 0, 0)


def keep_fit(
    path: Path, result: TrainResult, data: IntentData, *, model_config: ModelConfig, train_config: TrainConfig,
    seed: int,
) -> None:
    """Keep a finished fit for a resume: its weights at ``path`` (safetensors) and, beside them in
    ``path.json``, its timings and what it was trained with. Rank 0 writes; every rank holds the same."""
    from safetensors.torch import save_model

    from intentbal import distributed
    from intentbal.outputs import atomic_file, atomic_write_text, json_text

    if not distributed.is_main():
        return
    numbers = {"fingerprint": _fingerprint(data, model_config, train_config, seed, distributed.world_size()),
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

    from intentbal import distributed

    if not (path.is_file() and _numbers_path(path).is_file()):
        return None
    try:
        numbers = json.loads(_numbers_path(path).read_text(encoding="utf-8"))
        fingerprint = numbers["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise damaged_checkpoint(path, exc) from exc
    if fingerprint != _fingerprint(data, model_config, train_config, seed, distributed.world_size()):
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


def _smote(config: TrainConfig, model: Any, texts: list[str], targets: list[int], seed: int) -> Any:
    if not config.embedding_smote:
        return None
    if not hasattr(model, "embed"):
        raise IntentbalError("train.embedding_smote: expected model.head=prototype (it interpolates the "
                             "prototype head's embeddings), found the standard head; set one or the other")
    from intentbal.smote import EmbeddingSmote

    return EmbeddingSmote(texts, targets, seed=seed)


def init_prototypes(model: Any, ids: list[list[int]], targets: Any, *, pad_id: int, device: Any,
                    batch_size: int = 128, anchors: tuple[list[list[int]], Any, float] | None = None) -> None:
    """Point each intent's head vector at the mean embedding of its training examples.

    ``anchors`` ``(ids, targets, k)``: texts (descriptions) that count as ``k`` examples each of their
    intent, ``w = normalise(n * mean_example + k * e_anchor)``: an intent with few examples leans on
    its anchor, a frequent one on its examples. Without anchors the vectors are the examples' mean.
    """
    import torch

    was_training = model.training
    model.eval()
    sums = _embedding_sums(model, ids, targets, pad_id=pad_id, device=device, batch_size=batch_size)
    if anchors is not None:
        anchor_ids, anchor_targets, weight = anchors
        sums += weight * _embedding_sums(model, anchor_ids, anchor_targets, pad_id=pad_id, device=device,
                                         batch_size=batch_size)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.nn.functional.normalize(sums, dim=-1))
        model.classifier.bias.zero_()
    model.train(was_training)


def _embedding_sums(model: Any, ids: list[list[int]], targets: Any, *, pad_id: int, device: Any,
                    batch_size: int) -> Any:
    """Per intent (a row of the head), the sum of its texts' unit-length embeddings."""
    import torch

    from intentbal.batching import length_sorted

    sums = torch.zeros_like(model.classifier.weight, dtype=torch.float32)
    with torch.inference_mode():
        for chunk in length_sorted(ids, batch_size):
            input_ids, mask = pad([ids[i] for i in chunk], pad_id)
            pooled = model.embed(input_ids.to(device), mask.to(device)).float()
            sums.index_add_(0, targets[chunk].to(device), torch.nn.functional.normalize(pooled, dim=-1))
    return sums


def _anchors(tokenizer: Any, descriptions: Mapping[str, str] | None, index: dict[str, int], max_length: int,
             weight: float) -> tuple[list[list[int]], Any, float] | None:
    """The descriptions of the model's intents as :func:`init_prototypes` anchors; None at weight 0."""
    import torch

    known = [(intent, text) for intent, text in (descriptions or {}).items() if intent in index]
    if not weight or not known:
        return None
    ids, _ = encode(tokenizer, [text for _, text in known], max_length)
    return ids, torch.tensor([index[intent] for intent, _ in known]), weight


def _optimiser(model: Any, config: TrainConfig, total: int, device: Any) -> tuple[Any, Any]:
    import torch
    from transformers import get_linear_schedule_with_warmup

    fused: dict[str, Any] = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.learning_rate, **fused)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total), total)
    return optimizer, scheduler


def _batches(ids: list[list[int]], targets: Any, config: TrainConfig, generator: Any) -> Any:
    """The endless stream of training batches ``train.batches`` asks for."""
    if config.batches == "balanced":
        return balanced_batches(targets.tolist(), config.batch_size, config.intent_examples, generator)
    return shuffled_batches(ids, config.batch_size, generator)


def _training_forward(model: Any, smote: Any, config: TrainConfig) -> Any:
    """What a training step calls: the model; with embedding SMOTE the head that adds synthetic
    rows; with the contrastive term the head that also returns embeddings and intent vectors."""
    if smote is not None:
        from intentbal.smote import SmoteHead

        return SmoteHead(model)
    if config.contrastive_weight:
        if not hasattr(model, "embed"):
            raise IntentbalError("train.contrastive_weight: expected model.head=prototype (the term pulls "
                                 "embeddings towards the prototype head's intent vectors), found the standard "
                                 "head; set model.head=prototype or train.contrastive_weight=0")
        from intentbal.contrastive import ContrastiveHead

        return ContrastiveHead(model)
    return model


def _step(
    forward: Any, loss_fn: Any, optimizer: Any, scheduler: Any, device: Any, precision: str
) -> Callable[..., tuple[Any, Any]]:
    """One optimisation step on a padded batch; bf16 autocast on GPUs unless told otherwise."""
    import torch

    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    contrastive = bool(loss_fn.contrastive)  # then the forward is a ContrastiveHead (_training_forward)

    def step(input_ids: Any, mask: Any, target: Any, mix: tuple[Any, Any] | None = None,
             row_weight: Any = None) -> tuple[Any, Any]:
        """``(loss, embeddings)``: the batch's loss (detached, on the device) and, with ``mix``
        (embedding SMOTE's partners and weights), the rows' embeddings, else None. ``row_weight``:
        each row's weight in the loss (pseudo-labelled rows weigh less), None for 1."""
        input_ids, mask = input_ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)
        embeddings = pooled = prototypes = None
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            if mix is not None:
                logits, target, embeddings = forward(input_ids, mask, target, mix[0].to(device), mix[1].to(device))
            elif contrastive:
                logits, pooled, prototypes = forward(input_ids, mask)
            else:
                logits = forward(input_ids=input_ids, attention_mask=mask).logits
        if row_weight is not None:
            row_weight = row_weight.to(device, non_blocking=True)
            if mix is not None:  # the synthetic rows follow the real ones and weigh as their sources
                row_weight = torch.cat([row_weight, row_weight[mix[1].to(device) > 0]])
        loss = loss_fn(logits, target, row_weight, embeddings=pooled, prototypes=prototypes)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(forward.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach(), embeddings

    return step


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


class _LossMeter:
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


def _validator(
    validation: IntentData | None, tokenizer: Any, intents: list[str], max_length: int, batch_size: int,
) -> Callable[[Any], float] | None:
    """``check(model)``: the macro recall of ``model`` on ``validation`` over its intents (those the
    model does not know count as missed), leaving the model in training mode; None without data."""
    if validation is None or not len(validation):
        return None
    from intentbal.runtime import run_batches, torch_logits

    ids, _ = encode(tokenizer, validation.texts, max_length)

    def check(model: Any) -> float:
        probs = run_batches(ids, torch_logits(model), n_labels=len(intents), pad_id=pad_id_of(tokenizer),
                            batch_size=batch_size)
        model.train()
        return macro_recall([intents[i] for i in probs.argmax(axis=1)], validation.intents)

    return check


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[Any] = []
    no_decay: list[Any] = []
    exempt = set(getattr(model, "no_weight_decay", ()))
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "norm" in name.lower() or name in exempt else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _fingerprint(data: IntentData, model: ModelConfig, train: TrainConfig, seed: int, world: int) -> str:
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


@dataclass
class _Checkpoint:
    """The training state in a folder: weights in safetensors, the rest loaded without pickle."""

    folder: Path | None
    fingerprint: str
    smote: Any = None  # the embedding memory of train.embedding_smote, saved with the rest

    def save(
        self, model: Any, optimizer: Any, scheduler: Any, step: int, samples: int, elapsed: float, meter: _LossMeter,
        history: list[EpochRecord],
    ) -> None:
        import torch
        from safetensors.torch import save_model

        from intentbal.outputs import atomic_dir

        if self.folder is None:
            return
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "rng": torch.get_rng_state(), "step": step, "samples": samples, "elapsed": elapsed,
                 "fingerprint": self.fingerprint, "loss": meter.state(), "history": [r.to_dict() for r in history],
                 **({"smote": self.smote.state()} if self.smote else {})}
        with atomic_dir(self.folder, kind="checkpoint") as tmp:
            save_model(model, str(tmp / "model.safetensors"))
            torch.save(state, tmp / "state.pt")

    def restore(
        self, model: Any, optimizer: Any, scheduler: Any, meter: _LossMeter,
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
