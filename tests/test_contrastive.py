"""Balanced batches and the balanced contrastive term (train.batches, train.contrastive_weight)."""

import math
from collections import Counter

import pytest
import torch

from intentbal.config import ModelConfig, TrainConfig, load_config
from intentbal.errors import IntentbalError
from intentbal.training.batching import balanced_batches
from intentbal.training.loop import fine_tune
from intentbal.training.losses import IntentLoss, balanced_contrastive, weighted_cross_entropy

from conftest import one_line_error, run_cli, set_args, toy_data


def test_a_balanced_batch_is_p_intents_times_k_rows_of_each():
    targets = [0] * 50 + [1] * 20 + [2] * 3 + [3] * 2 + [4] * 1
    stream = balanced_batches(targets, 8, 2, torch.Generator().manual_seed(0))
    for _ in range(50):
        batch = next(stream)
        per_intent = Counter(targets[i] for i in batch)
        assert len(batch) == 8 and len(per_intent) == 4 and set(per_intent.values()) == {2}


def test_balanced_batches_show_every_intent_equally_often_whatever_its_count():
    targets = [0] * 200 + [1] * 30 + [2] * 2 + [3] * 1
    stream = balanced_batches(targets, 4, 2, torch.Generator().manual_seed(1))
    seen = Counter(targets[i] for _ in range(2000) for i in next(stream))
    assert all(abs(n / 8000 - 1 / 4) < 0.02 for n in seen.values()), seen
    # rows are drawn with replacement: the one-example intent appears twice in its batches
    assert seen[3] > 1800  # each of its batches holds it twice


def test_balanced_batches_take_every_intent_when_there_are_fewer_than_a_batch_holds():
    stream = balanced_batches([0, 0, 1, 1, 1], 32, 4, torch.Generator().manual_seed(0))
    assert Counter(Counter([0, 0, 1, 1, 1][i] for i in next(stream)).values()) == {4: 2}


def test_the_balanced_stream_replays_from_its_seed():
    targets = [i % 5 for i in range(40)]
    a = balanced_batches(targets, 8, 2, torch.Generator().manual_seed(3))
    b = balanced_batches(targets, 8, 2, torch.Generator().manual_seed(3))
    assert [next(a) for _ in range(20)] == [next(b) for _ in range(20)]


def _by_hand(z, targets, prototypes, temperature):
    """The balanced contrastive loss written out with loops, from the formula in its docstring."""
    z = torch.nn.functional.normalize(z, dim=-1)
    protos = torch.nn.functional.normalize(prototypes, dim=-1)
    keys = [(z[j], int(targets[j]), j) for j in range(len(z))] + [(protos[c], c, None) for c in range(len(protos))]
    total = 0.0
    for i in range(len(z)):
        others = [(k, c) for k, c, j in keys if j != i]
        e = [(math.exp(float(z[i] @ k) / temperature), c) for k, c in others]
        denominator = sum(sum(x for x, c in e if c == cls) / sum(1 for _, c in e if c == cls)
                          for cls in range(len(protos)))
        positives = [x for x, c in e if c == int(targets[i])]
        total += -sum(math.log(x / denominator) for x in positives) / len(positives)
    return total / len(z)


def test_the_contrastive_loss_is_its_formula():
    torch.manual_seed(0)
    z, prototypes = torch.randn(7, 5), torch.randn(3, 5)
    targets = torch.tensor([0, 0, 0, 1, 1, 2, 0])
    got = balanced_contrastive(z, targets, prototypes, temperature=0.5).item()
    assert got == pytest.approx(_by_hand(z, targets, prototypes, 0.5), rel=1e-5)


def test_the_contrastive_loss_averages_each_intent_so_a_frequent_one_cannot_crowd_the_rest():
    torch.manual_seed(1)
    z, prototypes = torch.randn(3, 6), torch.randn(3, 6)
    prototypes[2] = z[2]  # every key of intent 2 is the same point
    targets = torch.tensor([0, 1, 2])
    rows = balanced_contrastive(z, targets, prototypes, temperature=0.2, row_weights=torch.tensor([1., 1, 0]))
    # three more rows of intent 2 change nothing for the rows of intents 0 and 1 (a plain sum would grow)
    crowded = torch.cat([z[:3], z[2:3].repeat(3, 1)])
    weights = torch.tensor([1.0, 1, 0, 0, 0, 0])
    same = balanced_contrastive(crowded, torch.tensor([0, 1, 2, 2, 2, 2]), prototypes, temperature=0.2,
                                row_weights=weights)
    assert same.item() == pytest.approx(rows.item(), rel=1e-5)


def test_rows_near_their_intents_vector_score_lower_than_rows_elsewhere():
    prototypes = torch.eye(4)
    targets = torch.tensor([0, 0, 1, 1, 2, 3])
    near = prototypes[targets] + 0.05 * torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    far = prototypes[(targets + 1) % 4]
    assert balanced_contrastive(near, targets, prototypes, temperature=0.1) < \
        balanced_contrastive(far, targets, prototypes, temperature=0.1)


def test_the_contrastive_loss_reaches_the_intent_vectors_and_stays_fp32_under_bf16():
    torch.manual_seed(2)
    z = torch.randn(6, 8, requires_grad=True)
    prototypes = torch.randn(3, 8, requires_grad=True)
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = balanced_contrastive(z.bfloat16(), targets, prototypes, temperature=0.1)
    assert loss.dtype == torch.float32
    loss.backward()
    assert prototypes.grad.abs().sum() > 0 and z.grad.abs().sum() > 0
    full = balanced_contrastive(z.bfloat16().float(), targets, prototypes, temperature=0.1)
    assert loss.item() == pytest.approx(full.item(), rel=1e-5)


def test_the_contrastive_loss_keeps_finite_gradients_at_small_temperatures():
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.05]], requires_grad=True)
    prototypes = torch.tensor([[-1.0, 0.1], [0.0, 1.0]], requires_grad=True)
    for temperature in (0.01, 0.001):
        loss = balanced_contrastive(z, torch.tensor([0, 1]), prototypes, temperature=temperature)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all() and torch.isfinite(prototypes.grad).all()
        z.grad = prototypes.grad = None


def test_the_loss_adds_the_weighted_contrastive_term_and_balanced_batches_drop_the_class_weights():
    config = TrainConfig(batches="balanced", contrastive_weight=0.3, contrastive_temperature=0.2, loss_adjustment=1)
    loss = IntentLoss.from_config(config, {"a": 9, "b": 1}, ["a", "b"])
    assert loss.weights is None and loss.offset is None  # the batches already balance the intents
    torch.manual_seed(3)
    logits, targets, z, prototypes = torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), torch.randn(4, 5), torch.randn(2, 5)
    expected = (weighted_cross_entropy(logits, targets, None)
                + 0.3 * balanced_contrastive(z, targets, prototypes, temperature=0.2))
    assert loss(logits, targets, embeddings=z, prototypes=prototypes).item() == pytest.approx(expected.item())
    weighted = IntentLoss.from_config(TrainConfig(contrastive_weight=0.3), {"a": 9, "b": 1}, ["a", "b"])
    assert weighted.weights is not None  # shuffled batches keep train.weighting


def test_fine_tune_with_balanced_batches_and_the_contrastive_term(tiny_model, monkeypatch):
    from intentbal.training import losses

    batches, terms = [], []
    real_ce, real_bc = losses.weighted_cross_entropy, losses.balanced_contrastive

    def ce(logits, targets, weights, offset=None, rows=None, row_offset=None):
        batches.append(targets.tolist())
        assert weights is None
        return real_ce(logits, targets, weights, offset, rows, row_offset)

    def bc(embeddings, targets, prototypes, **kwargs):
        terms.append((embeddings.shape, prototypes.shape, prototypes.requires_grad and embeddings.requires_grad))
        return real_bc(embeddings, targets, prototypes, **kwargs)

    monkeypatch.setattr(losses, "weighted_cross_entropy", ce)
    monkeypatch.setattr(losses, "balanced_contrastive", bc)
    data = toy_data()
    config = TrainConfig(epochs=2, batch_size=8, intent_examples=2, batches="balanced", contrastive_weight=0.5,
                         learning_rate=3e-3)
    result = fine_tune(data, model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
                       train_config=config, seed=0)
    assert len(batches) == result.steps == 2 * math.ceil(len(data) / 8)
    assert all(sorted(Counter(b).values()) == [2, 2, 2, 2] for b in batches)
    n_intents = len(result.intents)
    assert len(terms) == len(batches) and all(p == (n_intents, z[1]) and grad for z, p, grad in terms)
    assert result.class_weights == [1.0] * n_intents
    assert all(math.isfinite(r.loss) for r in result.history)


def test_a_resumed_balanced_run_is_the_uninterrupted_one(tiny_model, tmp_path):
    model_config = ModelConfig(name_or_path=str(tiny_model), max_length=32)
    config = TrainConfig(epochs=3, batch_size=8, batches="balanced", intent_examples=2, contrastive_weight=0.5,
                         save_steps=4)
    first = fine_tune(toy_data(), model_config=model_config, train_config=config, seed=0,
                      checkpoint_dir=tmp_path / "ckpt")
    resumed = fine_tune(toy_data(), model_config=model_config, train_config=config, seed=0,
                        checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert resumed.resumed_from == 8
    for (name, p), q in zip(first.model.named_parameters(), resumed.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_balanced_batches_train_through_the_bucketed_loop_too(tiny_model):
    config = TrainConfig(epochs=1, batch_size=8, batches="balanced", intent_examples=2, step="bucketed")
    result = fine_tune(toy_data(), model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
                       train_config=config, seed=0)
    assert result.train_samples == result.steps * 8 and math.isfinite(result.history[-1].loss)


@pytest.mark.parametrize("batch_size, per_intent", [(4, 4), (8, 5)])
def test_a_balanced_batch_needs_room_for_two_intents(batch_size, per_intent):
    with pytest.raises(IntentbalError, match="expected train.batch_size at least twice train.intent_examples"):
        load_config(overrides=["train.batches=balanced", f"train.batch_size={batch_size}",
                               f"train.intent_examples={per_intent}"])
    assert load_config(overrides=[f"train.batch_size={batch_size}", f"train.intent_examples={per_intent}"])


def test_the_contrastive_term_and_embedding_smote_are_one_clear_error(toy_csv, tmp_path, capsys):
    code = run_cli("train", "--train", toy_csv, "--output", tmp_path / "run",
                   *set_args(["train.contrastive_weight=0.5", "train.embedding_smote=true"]))
    assert code != 0
    one_line_error(capsys, "expected at most one of train.contrastive_weight and train.embedding_smote",
                   "set train.embedding_smote=false")
    assert not (tmp_path / "run").exists()


def test_the_bucketed_loop_refuses_the_contrastive_term():
    from intentbal.config import TrainConfig
    from intentbal.training.plan import plan_training

    common = {"processes": 1, "row_weights": False, "prototype_head": True}
    with pytest.raises(IntentbalError, match="found train.contrastive_weight set"):
        plan_training(TrainConfig(step="bucketed", contrastive_weight=0.5), device_type="cpu", **common)
    assert plan_training(TrainConfig(contrastive_weight=0.5), device_type="cuda", **common).loop == "eager"


def test_train_with_balanced_batches_says_so_in_the_model_card(tiny_model, toy_csv, tmp_path, fast_overrides):
    assert run_cli("train", "--train", toy_csv, "--output", tmp_path / "run",
                   *set_args([*fast_overrides, "train.batches=balanced", "train.intent_examples=2",
                              "train.contrastive_weight=0.5", "evaluate.plots=false"])) == 0
    card = (tmp_path / "run" / "model" / "README.md").read_text(encoding="utf-8")
    assert "class-balanced, 2 examples per intent" in card and "balanced contrastive term | weight 0.5" in card
    assert "class weighting of the loss | none" in card
