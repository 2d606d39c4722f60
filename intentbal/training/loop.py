"""The eager training loop: fine-tune a sequence classifier with the class-weighted loss."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from intentbal.config import ModelConfig, TrainConfig
from intentbal.data.types import IntentData
from intentbal.model.adjustment import macro_recall
from intentbal.model.encoding import encode, pad, pad_id_of
from intentbal.model.prototypes import description_anchors, init_prototypes
from intentbal.progress import Progress, note, shows_notes
from intentbal.training import bucketed
from intentbal.training.batching import balanced_batches, shuffled_batches
from intentbal.training.checkpoint import Checkpoint, run_fingerprint
from intentbal.training.monitor import LossMeter, check_finite_weights, epochs_of
from intentbal.training.optimiser import make_optimiser
from intentbal.training.plan import TrainingPlan, native_bf16, plan_training
from intentbal.training.results import EpochRecord, TrainResult, check_trainable, loss_weights
from intentbal.training.step import batch_loss

log = logging.getLogger(__name__)

NOTE_SECONDS = 1.0  # the bar's running loss costs a device sync: at most one a second, and only for a bar


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
    initial: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Fine-tune ``model_config.name_or_path`` on ``data`` and return the trained model.

    Class weights follow ``train_config.weighting`` (none with balanced batches) and are computed from the counts in
    ``data`` -- the rows the model actually trains on, augmented ones included. With a
    ``checkpoint_dir`` and ``train_config.save_steps > 0`` the state is saved there every
    ``save_steps`` steps; ``resume=True`` continues from it (same data, config and seed).
    The result's ``history`` holds each epoch's mean training loss and, with ``validation``,
    the macro recall on it after the epoch (its intents the model does not know count as
    missed); validation does not change the training. ``descriptions`` (intent to text) pull the
    prototype head's starting vectors towards them (``train.description_weight``). ``initial``: the
    weights to start from (a state dict of a model with ``data``'s intents), instead of the
    pretrained encoder and a fresh head; a contrastive stage and the head's starting vectors are
    then not computed again.
    """
    import torch

    from intentbal.model.loading import load_for_training
    from intentbal.training import distributed
    from intentbal.training.losses import IntentLoss

    intents = check_trainable(data)
    rank, world = distributed.setup()
    device = distributed.device()
    torch.manual_seed(seed)
    tokenizer, model = load_for_training(model_config, intents)
    if initial is not None:
        model.load_state_dict(initial)
    model.to(device)
    counts = Counter(data.intents)
    loss_fn = IntentLoss.from_config(train_config, counts, intents).to(device)
    ids, cut = encode(tokenizer, data.texts, model_config.max_length)
    index = {intent: i for i, intent in enumerate(intents)}
    targets = torch.tensor([index[i] for i in data.intents])
    row_weights = None if data.weights is None else torch.tensor(data.weights, dtype=torch.float32)

    plan = plan_training(train_config, device_type=device.type, processes=world, row_weights=row_weights is not None,
                         prototype_head=hasattr(model, "embed"),
                         bf16_supported=native_bf16(device.type))
    # --- train.trainable_layers: the lower layers frozen, their output cached once per row ---
    from intentbal.training.frozen import freeze_lower

    width = bucketed.width_for(max((len(i) for i in ids), default=1), bucketed.widths(model_config.max_length))
    frozen = freeze_lower(model, trainable=train_config.trainable_layers, rows=ids, device=device, width=width)
    bottom = frozen.bottom if frozen is not None and frozen.cached else None
    # --- end train.trainable_layers
    # a resume runs the stage again (it depends only on the data, config and seed): the starting vectors and
    # neighbour margins are then the uninterrupted run's, and without a checkpoint nothing is skipped
    if train_config.contrastive_epochs and initial is None:  # the plan refused any other head
        from intentbal.training.contrastive_stage import contrastive_stage

        contrastive_stage(model, ids, targets, config=train_config, pad_id=pad_id_of(tokenizer), device=device,
                          seed=seed, bf16=plan.bf16, cached=bottom, progress=progress)
    if train_config.prototype_init and hasattr(model, "embed") and initial is None:
        anchors = description_anchors(tokenizer, descriptions, index, model_config.max_length,
                                      train_config.description_weight)
        init_prototypes(model, ids, targets, pad_id=pad_id_of(tokenizer), device=device, anchors=anchors,
                        cached=bottom)
    if train_config.neighbour_margin:  # after the starting vectors are set; the plan refused any other head
        loss_fn.set_neighbours(model.classifier.weight, neighbours=train_config.neighbours,
                               margin=train_config.neighbour_margin)
    per_epoch = max(1, math.ceil(len(ids) / (train_config.batch_size * world)))
    total = max(1, math.ceil(train_config.epochs * per_epoch))
    optimizer, scheduler = make_optimiser(model, train_config, total, device)
    smote = _smote(train_config, model, data.texts, targets.tolist(), seed)
    checkpoint = Checkpoint(folder=checkpoint_dir, fingerprint=run_fingerprint(data, model_config, train_config, seed,
                                                                               world), smote=smote)
    meter = LossMeter(device, rank, world, per_epoch=per_epoch, learning_rate=train_config.learning_rate)
    done, samples, elapsed, history = (checkpoint.restore(model, optimizer, scheduler, meter) if resume
                                       else (0, 0, 0.0, []))
    step_fn = _step(plan, distributed.wrap(_training_forward(model, smote, plan)), loss_fn, optimizer, scheduler,
                    device, bottom)
    check = _validator(validation, tokenizer, intents, model_config.max_length, train_config.batch_size,
                       bf16=plan.bf16)
    batches = _batches(ids, targets, train_config, torch.Generator().manual_seed(seed))
    for _ in range(done * world):  # replay the stream up to where the checkpoint stopped
        next(batches)

    epochs = math.ceil(total / per_epoch)
    log.debug("training plan: %s loop, forward %s, %s, CUDA graphs %s, %d process(es), row weights %s, %s, "
              "%d torch threads, rank %d", plan.loop, plan.forward, "bf16" if plan.bf16 else "fp32",
              "on" if plan.cuda_graphs else "off", plan.processes, "on" if plan.row_weights else "off",
              "every layer trained" if frozen is None else
              f"top {train_config.trainable_layers} layers trained, the lower ones "
              f"{'cached' if bottom is not None else 'frozen'}", torch.get_num_threads(), rank)
    if rank == 0:
        log.info("training %d rows: %d steps of %d (%d epochs), %s loop, %s on %s%s", len(ids), total - done,
                 train_config.batch_size * world, epochs, plan.loop, "bf16" if plan.bf16 else "fp32", device.type,
                 f", resumed at step {done}" if done else "")
    model.train()
    start = time.perf_counter() - elapsed
    noted = time.monotonic()
    eager_from = done + 1
    if plan.loop == "bucketed":  # train.step
        ran = range(done + 1, total + 1)
        fast = bucketed.train(
            model, optimizer, scheduler, batches, plan=plan, ids=ids, targets=targets, row_weights=row_weights,
            pad_id=pad_id_of(tokenizer), max_length=model_config.max_length, loss_fn=loss_fn, bottom=bottom,
            config=train_config, device=device, steps=ran, samples=samples, progress=progress,
            save=lambda at, n: checkpoint.save(model, optimizer, scheduler, at, n, time.perf_counter() - start,
                                               meter, history),
        )
        samples = fast.samples
        meter.check_losses(fast.losses, ran)
        curve = epochs_of(fast.losses, ran, per_epoch, check(model) if check else None)
        if rank == 0:  # the bucketed loop does not stop between epochs: its lines come at its end
            for record in curve:
                log.info("%s", _epoch_line(record, epochs, samples, time.perf_counter() - start))
        history += curve
        eager_from = total + 1  # the bucketed loop ran every step
    for step in range(eager_from, total + 1):
        group = [next(batches) for _ in range(world)]  # every rank draws the same stream
        batch = group[rank]
        mix = smote.partners(batch, step=step) if smote else None
        loss, embeddings = step_fn(batch, *pad([ids[i] for i in batch], pad_id_of(tokenizer)), targets[batch], mix,
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
            history.append(EpochRecord(epoch=round(step / per_epoch, 4), step=step, loss=mean,
                                       validation_macro_recall=recall))
            note(progress, "train", _note(history[-1]))
            if rank == 0:
                log.info("%s", _epoch_line(history[-1], epochs, samples, time.perf_counter() - start))
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
    return TrainResult(model=model, tokenizer=tokenizer, intents=intents, class_weights=weights,
                       train_seconds=seconds, train_samples=samples, steps=total,
                       resumed_from=done, warnings=warnings, history=history)


def _epoch_line(record: EpochRecord, epochs: int, samples: int, seconds: float) -> str:
    """``epoch 3/10: loss 0.4123, validation macro recall 0.871, 512.3 samples/s, 45 s elapsed``."""
    rate = samples / seconds if seconds > 0 else 0.0
    return f"epoch {math.ceil(record.epoch)}/{epochs}: {_note(record)}, {rate:.1f} samples/s, {seconds:.0f} s elapsed"


def _note(record: EpochRecord) -> str:
    recall = record.validation_macro_recall
    return f"loss {record.loss:.4f}" + ("" if recall is None else f", validation macro recall {recall:.3f}")


def _smote(config: TrainConfig, model: Any, texts: list[str], targets: list[int], seed: int) -> Any:
    if not config.embedding_smote:
        return None
    from intentbal.training.smote import EmbeddingSmote

    return EmbeddingSmote(texts, targets, seed=seed)


def _batches(ids: list[list[int]], targets: Any, config: TrainConfig, generator: Any) -> Any:
    """The endless stream of training batches ``train.batches`` asks for."""
    if config.batches == "balanced":
        return balanced_batches(targets.tolist(), config.batch_size, config.intent_examples, generator)
    return shuffled_batches(ids, config.batch_size, generator)


def _training_forward(model: Any, smote: Any, plan: TrainingPlan) -> Any:
    """What a training step calls (:attr:`TrainingPlan.forward`): the model; with embedding SMOTE the
    head that adds synthetic rows; with the contrastive term the head that also returns embeddings
    and intent vectors."""
    if plan.forward == "smote":
        from intentbal.training.smote import SmoteHead

        return SmoteHead(model)
    if plan.forward == "contrastive":
        from intentbal.training.contrastive import ContrastiveHead

        return ContrastiveHead(model)
    return model


def _step(
    plan: TrainingPlan, forward: Any, loss_fn: Any, optimizer: Any, scheduler: Any, device: Any, bottom: Any,
) -> Callable[..., tuple[Any, Any]]:
    """One eager optimisation step on a batch padded on the host: :func:`batch_loss`, then the
    backward pass, clipping, AdamW and the schedule."""
    import torch

    def step(rows: list[int], input_ids: Any, mask: Any, target: Any, mix: tuple[Any, Any] | None = None,
             row_weight: Any = None) -> tuple[Any, Any]:
        """``(loss, embeddings)`` of the batch of training ``rows`` (see :func:`batch_loss`)."""
        input_ids, mask = input_ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)
        if row_weight is not None:
            row_weight = row_weight.to(device, non_blocking=True)
        if mix is not None:
            mix = (mix[0].to(device), mix[1].to(device))
        if bottom is not None:  # the frozen layers' cached states of these rows
            bottom.select(torch.tensor(rows, device=device))
        try:
            loss, embeddings = batch_loss(plan, forward, loss_fn, input_ids, mask, target, row_weights=row_weight,
                                          mix=mix)
        finally:
            if bottom is not None:
                bottom.select(None)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(forward.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach(), embeddings

    return step


def _validator(
    validation: IntentData | None, tokenizer: Any, intents: list[str], max_length: int, batch_size: int, *,
    bf16: bool = False,
) -> Callable[[Any], float] | None:
    """``check(model)``: the macro recall of ``model`` on ``validation`` over its intents (those the
    model does not know count as missed), leaving the model in training mode; None without data.
    With ``bf16`` the encoder runs under bf16 autocast, as in the training steps: the curve is only
    watched, never chosen on (tau and every report are computed in fp32 after training)."""
    if validation is None or not len(validation):
        return None
    import torch

    from intentbal.inference.backends import run_batches, torch_logits

    ids, _ = encode(tokenizer, validation.texts, max_length)

    def check(model: Any) -> float:
        device = next(model.parameters()).device.type
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16, cache_enabled=False):
            probs = run_batches(ids, torch_logits(model), n_labels=len(intents), pad_id=pad_id_of(tokenizer),
                                batch_size=batch_size)
        model.train()
        return macro_recall([intents[i] for i in probs.argmax(axis=1)], validation.intents)

    return check
