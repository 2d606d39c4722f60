"""Fine-tuning a sequence classifier with the class-weighted loss.

A lean loop: the data are tokenised once, batches are drawn from length-sorted pools
(little padding), the loss comes from :mod:`intentbal.losses`, and every
``train.save_steps`` steps a checkpoint is written from which ``resume`` continues
exactly where the run stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intentbal.adjust import log_prior
from intentbal.batching import encode, pad, pad_id_of, shuffled_batches
from intentbal.config import ModelConfig, TrainConfig
from intentbal.data import IntentData
from intentbal.errors import IntentbalError
from intentbal.losses import class_weights, weighted_cross_entropy

Progress = Callable[[str, int, int], None]


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
) -> TrainResult:
    """Fine-tune ``model_config.name_or_path`` on ``data`` and return the trained model.

    Class weights follow ``train_config.weighting`` and are computed from the counts in
    ``data`` -- the rows the model actually trains on, augmented ones included. With a
    ``checkpoint_dir`` and ``train_config.save_steps > 0`` the state is saved there every
    ``save_steps`` steps; ``resume=True`` continues from it (same data, config and seed).
    """
    import torch

    from intentbal import distributed
    from intentbal.models import load_for_training

    intents = check_trainable(data)
    rank, world = distributed.setup()
    device = distributed.device()
    torch.manual_seed(seed)
    tokenizer, model = load_for_training(model_config, intents)
    model.to(device)
    counts = Counter(data.intents)
    weights = loss_weights(counts, intents, train_config)
    weight_tensor = None if train_config.weighting == "none" else torch.tensor(weights, dtype=torch.float32)
    offset = _loss_offset(counts, intents, train_config.loss_adjustment)
    ids, cut = encode(tokenizer, data.texts, model_config.max_length)
    index = {intent: i for i, intent in enumerate(intents)}
    targets = torch.tensor([index[i] for i in data.intents])

    # --- train.trainable_layers: the lower layers frozen, their output cached once per row ---
    from intentbal.frozen import freeze_lower

    frozen = freeze_lower(model, trainable=train_config.trainable_layers, rows=ids, device=device)
    # --- end train.trainable_layers
    if train_config.prototype_init and hasattr(model, "embed"):
        init_prototypes(model, ids, targets, pad_id=pad_id_of(tokenizer), device=device)
    total = max(1, math.ceil(train_config.epochs * math.ceil(len(ids) / (train_config.batch_size * world))))
    optimizer, scheduler = _optimiser(model, train_config, total, device)
    smote = _smote(train_config, model, data.texts, targets.tolist(), seed)
    checkpoint = _Checkpoint(checkpoint_dir, _fingerprint(data, model_config, train_config, seed, world), smote)
    done, samples, elapsed = checkpoint.restore(model, optimizer, scheduler) if resume else (0, 0, 0.0)
    step_fn = _step(distributed.wrap(model), optimizer, scheduler, weight_tensor, offset, device,
                    train_config.precision)
    batches = shuffled_batches(ids, train_config.batch_size, torch.Generator().manual_seed(seed))
    for _ in range(done * world):  # replay the stream up to where the checkpoint stopped
        next(batches)

    model.train()
    start = time.perf_counter() - elapsed
    for step in range(done + 1, total + 1):
        group = [next(batches) for _ in range(world)]  # every rank draws the same stream
        batch = group[rank]
        mix = smote.partners(batch, step=step) if smote else None
        embeddings = step_fn(*pad([ids[i] for i in batch], pad_id_of(tokenizer)), targets[batch], mix)
        if smote:
            smote.store(batch, embeddings)
        samples += sum(len(b) for b in group)
        if progress:
            progress("train", step, total)
        if train_config.save_steps and step % train_config.save_steps == 0 and step < total and rank == 0:
            checkpoint.save(model, optimizer, scheduler, step, samples, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    model.eval()
    warnings = [f"{cut} training text(s) longer than {model_config.max_length} tokens were truncated"] if cut else []
    # --- train.trainable_layers: the encoder back in one piece, to be saved as a full model ---
    if frozen is not None:
        frozen.restore()
        warnings += [frozen.warning] if frozen.warning else []
    # --- end train.trainable_layers
    return TrainResult(model, tokenizer, intents, weights, seconds, samples, total,
                       resumed_from=done, warnings=warnings)


def loss_weights(counts: Counter[str], intents: list[str], config: TrainConfig) -> list[float]:
    """The loss's class weights in ``intents`` order, from the counts the model trains on."""
    return [float(w) for w in class_weights([counts[i] for i in intents], scheme=config.weighting, beta=config.beta)]


def untrained(data: IntentData, *, model_config: ModelConfig, train_config: TrainConfig) -> TrainResult:
    """An untrained model for ``data``'s intents, with the class weights :func:`fine_tune` would
    use: the skeleton that kept weights are loaded into."""
    from intentbal.models import load_for_training

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
               "warnings": result.warnings}
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
    numbers = json.loads(_numbers_path(path).read_text(encoding="utf-8"))
    if numbers["fingerprint"] != _fingerprint(data, model_config, train_config, seed, distributed.world_size()):
        raise IntentbalError(
            f"checkpoint {path}: expected one made with the same data, config and seed, found "
            "one from a different run; resume with the original settings or delete the checkpoint"
        )
    result = untrained(data, model_config=model_config, train_config=train_config)
    load_model(result.model, str(path))
    result.model.to(distributed.device())
    result.train_seconds, result.train_samples = numbers["train_seconds"], numbers["train_samples"]
    result.steps = result.resumed_from = numbers["steps"]
    result.warnings = list(numbers["warnings"])
    return result


def _numbers_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _loss_offset(counts: Counter[str], intents: list[str], tau: float) -> Any:
    """``tau * log(prior)`` for the logit-adjusted loss, or None when tau is 0."""
    import torch

    return torch.tensor(tau * log_prior(counts, intents), dtype=torch.float32) if tau else None


def _smote(config: TrainConfig, model: Any, texts: list[str], targets: list[int], seed: int) -> Any:
    if not config.embedding_smote:
        return None
    if not hasattr(model, "embed"):
        raise IntentbalError("train.embedding_smote: expected model.head=prototype (it interpolates the "
                             "prototype head's embeddings), found the standard head; set one or the other")
    from intentbal.smote import EmbeddingSmote

    return EmbeddingSmote(texts, targets, seed=seed)


def init_prototypes(model: Any, ids: list[list[int]], targets: Any, *, pad_id: int, device: Any,
                    batch_size: int = 128) -> None:
    """Point each intent's head vector at the mean embedding of its training examples."""
    import torch

    from intentbal.batching import length_sorted

    was_training = model.training
    model.eval()
    sums = torch.zeros_like(model.classifier.weight, dtype=torch.float32)
    with torch.inference_mode():
        for chunk in length_sorted(ids, batch_size):
            input_ids, mask = pad([ids[i] for i in chunk], pad_id)
            pooled = model.embed(input_ids.to(device), mask.to(device)).float()
            sums.index_add_(0, targets[chunk].to(device), torch.nn.functional.normalize(pooled, dim=-1))
    with torch.no_grad():
        model.classifier.weight.copy_(torch.nn.functional.normalize(sums, dim=-1))
        model.classifier.bias.zero_()
    model.train(was_training)


def _optimiser(model: Any, config: TrainConfig, total: int, device: Any) -> tuple[Any, Any]:
    import torch
    from transformers import get_linear_schedule_with_warmup

    fused: dict[str, Any] = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.learning_rate, **fused)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total), total)
    return optimizer, scheduler


def _step(
    model: Any, optimizer: Any, scheduler: Any, weights: Any, offset: Any, device: Any, precision: str
) -> Callable[[Any, Any, Any, tuple[Any, Any] | None], Any]:
    """One optimisation step on a padded batch; bf16 autocast on GPUs unless told otherwise."""
    import torch

    weights = weights.to(device) if weights is not None else None
    offset = offset.to(device) if offset is not None else None
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())

    def step(input_ids: Any, mask: Any, target: Any, mix: tuple[Any, Any] | None = None) -> Any:
        """One step; with ``mix`` (embedding SMOTE) it returns the batch's embeddings, else None."""
        extra = {} if mix is None else {"mix_with": mix[0].to(device), "mix_weight": mix[1].to(device)}
        target = target.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(input_ids=input_ids.to(device, non_blocking=True),
                        attention_mask=mask.to(device, non_blocking=True), **extra)
        if mix is not None:  # the synthetic rows follow the real ones and share their intents
            target = torch.cat([target, target[extra["mix_weight"] > 0]])
        loss = weighted_cross_entropy(out.logits, target, weights, offset)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return out.hidden_states[0] if mix is not None else None

    return step


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
    return h.hexdigest()


@dataclass
class _Checkpoint:
    """The training state in a folder: weights in safetensors, the rest loaded without pickle."""

    folder: Path | None
    fingerprint: str
    smote: Any = None  # the embedding memory of train.embedding_smote, saved with the rest

    def save(self, model: Any, optimizer: Any, scheduler: Any, step: int, samples: int, elapsed: float) -> None:
        import torch
        from safetensors.torch import save_model

        from intentbal.outputs import atomic_dir

        if self.folder is None:
            return
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "rng": torch.get_rng_state(), "step": step, "samples": samples, "elapsed": elapsed,
                 "fingerprint": self.fingerprint, **({"smote": self.smote.state()} if self.smote else {})}
        with atomic_dir(self.folder, kind="checkpoint") as tmp:
            save_model(model, str(tmp / "model.safetensors"))
            torch.save(state, tmp / "state.pt")

    def restore(self, model: Any, optimizer: Any, scheduler: Any) -> tuple[int, int, float]:
        """Load the saved state into the objects; ``(step, samples, elapsed)``, zeros without one."""
        import torch
        from safetensors.torch import load_model

        if self.folder is None or not (self.folder / "state.pt").is_file():
            return 0, 0, 0.0
        state = torch.load(self.folder / "state.pt", weights_only=True)
        if state["fingerprint"] != self.fingerprint:
            raise IntentbalError(
                f"checkpoint {self.folder}: expected one made with the same data, config and seed, found "
                "one from a different run; resume with the original settings or delete the checkpoint"
            )
        load_model(model, str(self.folder / "model.safetensors"))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if self.smote is not None and state.get("smote", {}).get("memory") is not None:
            self.smote.load(state["smote"])
        return state["step"], state["samples"], state["elapsed"]
