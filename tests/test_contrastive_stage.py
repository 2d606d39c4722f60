"""The supervised contrastive stage before the head (train.contrastive_epochs)."""

import math

import pytest
import torch

from intentbal.config import ModelConfig, TrainConfig, load_config
from intentbal.model.encoding import encode, pad, pad_id_of
from intentbal.model.loading import load_for_training
from intentbal.model.prototypes import intent_means
from intentbal.training import contrastive_stage as stage_module
from intentbal.training.contrastive_stage import contrastive_stage, stage_steps
from intentbal.training.frozen import freeze_lower
from intentbal.training.loop import fine_tune

from conftest import toy_data


def _model_and_rows(tiny_model):
    data = toy_data()
    intents = sorted(set(data.intents))
    tokenizer, model = load_for_training(ModelConfig(name_or_path=str(tiny_model), max_length=32), intents)
    ids, _ = encode(tokenizer, data.texts, 32)
    targets = torch.tensor([intents.index(i) for i in data.intents])
    return model, ids, targets, pad_id_of(tokenizer)


def _separation(model, ids, targets, pad_id) -> float:
    """Mean cosine of rows of the same intent minus that of rows of different intents."""
    model.eval()
    with torch.no_grad():
        z = torch.nn.functional.normalize(model.embed(*pad(ids, pad_id)), dim=-1)
    cos = z @ z.T
    same = targets.unsqueeze(0) == targets.unsqueeze(1)
    off_diagonal = ~torch.eye(len(ids), dtype=torch.bool)
    return float(cos[same & off_diagonal].mean() - cos[~same].mean())


def test_the_stage_pulls_each_intents_rows_together_and_leaves_the_head_alone(tiny_model):
    model, ids, targets, pad_id = _model_and_rows(tiny_model)
    head = model.classifier.weight.detach().clone()
    before = _separation(model, ids, targets, pad_id)
    config = TrainConfig(contrastive_epochs=8, batch_size=8, intent_examples=2, learning_rate=3e-3, warmup_ratio=0.0)
    seen = []
    losses = contrastive_stage(model, ids, targets, config=config, pad_id=pad_id, device=torch.device("cpu"), seed=0,
                               progress=lambda *call: seen.append(call))
    assert len(losses) == 8 and all(math.isfinite(x) for x in losses)
    assert seen == [("train contrastive", step, 24) for step in range(1, 25)]  # 8 passes of ceil(21 / 8) steps
    assert losses[-1] < losses[0]
    assert _separation(model, ids, targets, pad_id) > before + 0.1
    assert torch.equal(model.classifier.weight, head)


def test_the_stage_takes_its_steps_from_the_passes_and_its_batches_from_the_seed(tiny_model):
    assert stage_steps(21, TrainConfig(contrastive_epochs=2, batch_size=8)) == 6  # ceil(21 / 8) = 3 a pass
    assert stage_steps(21, TrainConfig(contrastive_epochs=0.5, batch_size=8)) == 2
    config = TrainConfig(contrastive_epochs=1, batch_size=8, intent_examples=2)
    runs = []
    for state in range(2):
        torch.manual_seed(0)  # the head's random start
        model, ids, targets, pad_id = _model_and_rows(tiny_model)
        torch.manual_seed(state)  # the random state the stage is handed differs: it seeds itself
        contrastive_stage(model, ids, targets, config=config, pad_id=pad_id, device=torch.device("cpu"), seed=3)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


@pytest.mark.parametrize("batch_size", [1, 3])
def test_a_batch_too_small_for_two_intents_of_several_rows_still_trains(tiny_model, batch_size):
    model, ids, targets, pad_id = _model_and_rows(tiny_model)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    config = TrainConfig(contrastive_epochs=1, batch_size=batch_size, intent_examples=4, learning_rate=3e-3)
    losses = contrastive_stage(model, ids, targets, config=config, pad_id=pad_id, device=torch.device("cpu"), seed=0)
    assert len(losses) == 1 and math.isfinite(losses[0])
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_with_frozen_lower_layers_the_stage_trains_the_top_ones_only(tiny_model):
    model, ids, targets, pad_id = _model_and_rows(tiny_model)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    frozen = freeze_lower(model, trainable=1, rows=ids, device=torch.device("cpu"))
    config = TrainConfig(contrastive_epochs=2, batch_size=8, intent_examples=2, learning_rate=3e-3)
    contrastive_stage(model, ids, targets, config=config, pad_id=pad_id, device=torch.device("cpu"), seed=0,
                      cached=frozen.bottom)
    frozen.restore()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("encoder.encoder.layer.1.") for k in changed), sorted(changed)


def _train(tiny_model, config: TrainConfig):
    return fine_tune(toy_data(), model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
                     train_config=config, seed=0)


def _weights(result) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


def test_off_changes_nothing_and_on_the_head_starts_from_the_reshaped_encoder(tiny_model, monkeypatch):
    settings = {"epochs": 2, "batch_size": 8, "learning_rate": 3e-3}
    default = _weights(_train(tiny_model, TrainConfig(**settings)))
    off = _weights(_train(tiny_model, TrainConfig(**settings, contrastive_epochs=0, contrastive_temperature=0.05)))
    assert all(torch.equal(default[k], off[k]) for k in default)

    order = []
    real_stage, real_means = stage_module.contrastive_stage, intent_means

    def stage_spy(model, *args, **kwargs):
        order.append("stage")
        return real_stage(model, *args, **kwargs)

    def start_vectors_spy(model, *args, **kwargs):  # init_prototypes' call (the stage holds its own reference)
        means = real_means(model, *args, **kwargs)
        order.append(means)
        return means

    monkeypatch.setattr(stage_module, "contrastive_stage", stage_spy)
    monkeypatch.setattr("intentbal.model.prototypes.intent_means", start_vectors_spy)
    # one step, all of it warm-up at a learning rate of 0: the head stays where it started
    one_step = {**settings, "epochs": 0.001, "warmup_ratio": 0.9}
    result = _train(tiny_model, TrainConfig(**one_step, contrastive_epochs=1, intent_examples=2))
    assert order[0] == "stage" and len(order) == 2
    assert torch.allclose(result.model.classifier.weight, order[1])  # the means of the reshaped encoder
    plain = _train(tiny_model, TrainConfig(**one_step))
    assert not torch.allclose(plain.model.classifier.weight, order[1], atol=1e-3)


def test_a_resumed_run_with_the_stage_is_the_uninterrupted_one(tiny_model, tmp_path):
    # with the margins too: they are found on the starting vectors taken after the stage
    config = TrainConfig(epochs=3, batch_size=8, intent_examples=2, contrastive_epochs=1, save_steps=4,
                         learning_rate=3e-3, neighbour_margin=2.0, neighbours=1)
    settings = {"model_config": ModelConfig(name_or_path=str(tiny_model), max_length=32), "train_config": config,
                "seed": 0, "checkpoint_dir": tmp_path / "ckpt"}
    whole = fine_tune(toy_data(), **settings).model.state_dict()
    resumed = fine_tune(toy_data(), resume=True, **settings)
    assert resumed.resumed_from == 8
    assert all(torch.equal(whole[k], v) for k, v in resumed.model.state_dict().items())


def test_resume_without_a_checkpoint_still_runs_the_stage(tiny_model, tmp_path):
    settings = {"model_config": ModelConfig(name_or_path=str(tiny_model), max_length=32), "seed": 0,
                "train_config": TrainConfig(epochs=1, batch_size=8, intent_examples=2, contrastive_epochs=1,
                                            learning_rate=3e-3, save_steps=0)}
    fresh = fine_tune(toy_data(), **settings).model.state_dict()
    resumed = fine_tune(toy_data(), resume=True, checkpoint_dir=tmp_path / "none", **settings)
    assert resumed.resumed_from == 0
    assert all(torch.equal(fresh[k], v) for k, v in resumed.model.state_dict().items())


def test_the_card_records_the_stage():
    from intentbal.model.record import ModelRecord, TauRecord, portable
    from intentbal.reports.card import model_card

    def card(*overrides: str) -> str:
        record = ModelRecord(config=portable(load_config(overrides=list(overrides))), train_counts={"a": 2, "b": 40},
                             max_length=64, logit_adjustment=TauRecord(tau=1.0, chosen_on="default"))
        return model_card(name="bot", record=record, report=None, eval_name=None, rare_max=10, frequent_min=50)

    assert ("| contrastive stage | 2 passes of balanced batches before the head, temperature 0.05 |"
            in card("train.contrastive_epochs=2", "train.contrastive_temperature=0.05"))
    assert "contrastive stage" not in card()
