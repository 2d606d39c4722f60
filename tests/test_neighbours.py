"""Margins against confusable neighbours (train.neighbour_margin, train.neighbours)."""

import pytest
import torch

from intentbal.config import ModelConfig, TrainConfig, load_config
from intentbal.training.loop import fine_tune
from intentbal.training.losses import IntentLoss, neighbour_margins, weighted_cross_entropy

from conftest import one_line_error, run_cli, set_args, toy_data


def _vectors() -> torch.Tensor:
    # intents 0 and 1 nearly the same direction, 2 between 1 and 3, 3 alone
    return torch.tensor([[1.0, 0.0, 0.0], [0.95, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.0]])


def test_each_intent_gets_the_margin_against_its_nearest_intents_only():
    margins = neighbour_margins(_vectors(), neighbours=1, margin=2.0)
    assert margins.tolist() == [[0, 2, 0, 0], [2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]]
    two = neighbour_margins(_vectors() * 5, neighbours=2, margin=1.5)  # cosine: the vectors' length is ignored
    assert two.tolist() == [[0, 1.5, 1.5, 0], [1.5, 0, 1.5, 0], [0, 1.5, 0, 1.5], [0, 1.5, 1.5, 0]]
    assert neighbour_margins(_vectors(), neighbours=10, margin=1.0).tolist() == (1 - torch.eye(4)).tolist()


def test_the_loss_with_margins_is_the_cross_entropy_of_each_rows_logits_plus_its_intents_margins():
    loss = IntentLoss.from_config(TrainConfig(), {"a": 9, "b": 3, "c": 2, "d": 1}, ["a", "b", "c", "d"])
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 2])
    plain = loss(logits, targets)
    loss.set_neighbours(_vectors(), neighbours=1, margin=0.0)  # a margin of 0 leaves the loss as it was
    assert loss.margins is None and loss(logits, targets).item() == plain.item()
    loss.set_neighbours(_vectors(), neighbours=1, margin=2.0)
    margins = neighbour_margins(_vectors(), neighbours=1, margin=2.0)
    expected = weighted_cross_entropy(logits + margins[targets], targets, loss.weights)
    assert loss(logits, targets).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss(logits, targets).item() > plain.item()


def test_a_margin_pushes_a_rows_neighbour_down_harder_than_a_far_intent():
    loss = IntentLoss.from_config(TrainConfig(weighting="none"), {"a": 1, "b": 1, "c": 1, "d": 1},
                                  ["a", "b", "c", "d"])
    loss.set_neighbours(_vectors(), neighbours=1, margin=3.0)
    logits = torch.zeros(1, 4, requires_grad=True)  # intent 0's row, every intent scored alike
    loss(logits, torch.tensor([0])).backward()
    grad = logits.grad[0]
    assert grad[0] < 0 and grad[1] > grad[2] > 0 and grad[2] == pytest.approx(grad[3].item())


def _train(tiny_model, config: TrainConfig) -> dict[str, torch.Tensor]:
    result = fine_tune(toy_data(), model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
                       train_config=config, seed=0)
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


def test_fine_tune_finds_the_neighbours_among_the_starting_vectors_and_off_changes_nothing(tiny_model, monkeypatch):
    settings = {"epochs": 2, "batch_size": 8, "learning_rate": 3e-3}
    default = _train(tiny_model, TrainConfig(**settings))
    off = _train(tiny_model, TrainConfig(**settings, neighbour_margin=0.0, neighbours=5))
    assert all(torch.equal(default[k], off[k]) for k in default)

    seen = []
    real = IntentLoss.set_neighbours

    def spy(self, prototypes, **kwargs):
        seen.append((prototypes.detach().clone(), kwargs))
        return real(self, prototypes, **kwargs)

    monkeypatch.setattr(IntentLoss, "set_neighbours", spy)
    on = _train(tiny_model, TrainConfig(**settings, neighbour_margin=4.0, neighbours=2))
    (vectors, kwargs), = seen
    assert kwargs == {"neighbours": 2, "margin": 4.0}
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(len(vectors)), atol=1e-5)  # the unit starting vectors
    assert not torch.equal(vectors, on["classifier.weight"])
    assert any(not torch.equal(default[k], on[k]) for k in default)


def test_the_margins_train_through_the_bucketed_loop_too(tiny_model_without_dropout):
    def weights(**settings):
        return _train(tiny_model_without_dropout, TrainConfig(epochs=1, batch_size=8, **settings))["classifier.weight"]

    bucketed = weights(neighbour_margin=4.0, step="bucketed")
    assert torch.allclose(weights(neighbour_margin=4.0, step="eager"), bucketed, atol=1e-4)
    assert not torch.allclose(weights(step="bucketed"), bucketed, atol=1e-4)


def test_the_cli_refuses_margins_without_starting_vectors_before_any_work(toy_csv, tmp_path, capsys):
    code = run_cli("train", "--train", toy_csv, "--output", tmp_path / "run",
                   *set_args(["train.neighbour_margin=2", "train.prototype_init=false"]))
    assert code == 2
    one_line_error(capsys, "train.neighbour_margin: expected train.prototype_init=true", "or train.neighbour_margin=0")
    assert not (tmp_path / "run").exists()
    assert load_config(overrides=["train.prototype_init=false"]).train.neighbour_margin == 0.0  # alone it is fine


def test_the_card_records_the_margins():
    from intentbal.model.record import ModelRecord, TauRecord, portable
    from intentbal.reports.card import model_card

    config = load_config(overrides=["train.neighbour_margin=3", "train.neighbours=2"])
    record = ModelRecord(config=portable(config), train_counts={"a": 2, "b": 40}, max_length=64,
                         logit_adjustment=TauRecord(tau=1.0, chosen_on="default"))
    assert record.settings()["neighbour_margin"] == 3.0
    card = model_card(name="bot", record=record, report=None, eval_name=None, rare_max=10, frequent_min=50)
    assert "| confusable-neighbour margin | 3 logits against each intent's 2 nearest intents |" in card
    plain = ModelRecord(config=portable(load_config()), train_counts={"a": 2, "b": 40}, max_length=64,
                        logit_adjustment=TauRecord(tau=1.0, chosen_on="default"))
    assert "confusable-neighbour" not in model_card(name="bot", record=plain, report=None, eval_name=None,
                                                    rare_max=10, frequent_min=50)
