import math
from collections import Counter

import pytest
import torch

from intentbal.batching import pad, shuffled_batches
from intentbal.config import ModelConfig, TrainConfig
from intentbal.data import IntentData
from intentbal.errors import IntentbalError
from intentbal.losses import class_weights
from intentbal.train import fine_tune

from conftest import toy_data


@pytest.mark.slow  # 40 epochs for each head
@pytest.mark.parametrize("head", ["prototype", "standard"])
def test_fine_tune_changes_parameters_and_learns(tiny_model, head):
    from transformers import AutoModel

    before = AutoModel.from_pretrained(tiny_model).encoder.layer[0].attention.self.query.weight.clone()
    result = fine_tune(
        toy_data(), model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32, head=head),
        train_config=TrainConfig(epochs=40, batch_size=8, learning_rate=3e-3), seed=0,
    )
    backbone = result.model.bert if head == "standard" else result.model.encoder
    after = backbone.encoder.layer[0].attention.self.query.weight
    assert not torch.allclose(before, after)
    assert result.intents == sorted(set(toy_data().intents))
    assert result.model.config.id2label == dict(enumerate(result.intents))
    enc = result.tokenizer(toy_data().texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        pred = result.model(**enc).logits.argmax(-1).tolist()
    accuracy = sum(result.intents[p] == g for p, g in zip(pred, toy_data().intents)) / len(pred)
    assert accuracy >= 0.8, f"a tiny model should fit the toy data, got {accuracy:.2f}"


def test_prototype_head_starts_at_each_intents_mean_embedding(tiny_model):
    from intentbal.batching import encode
    from intentbal.loading import load_for_training
    from intentbal.train import init_prototypes

    data = toy_data()
    intents = sorted(set(data.intents))
    tokenizer, model = load_for_training(ModelConfig(name_or_path=str(tiny_model), max_length=32), intents)
    ids, _ = encode(tokenizer, data.texts, 32)
    targets = torch.tensor([intents.index(i) for i in data.intents])
    init_prototypes(model, ids, targets, pad_id=0, device=torch.device("cpu"), batch_size=3)
    model.eval()
    with torch.no_grad():
        for k, intent in enumerate(intents):
            rows = [t for t, i in zip(data.texts, data.intents) if i == intent]
            one_by_one = torch.cat([model.embed(**_no_types(tokenizer(t, return_tensors="pt"))) for t in rows])
            mean = torch.nn.functional.normalize(one_by_one, dim=-1).mean(0)
            assert torch.allclose(model.classifier.weight[k], mean / mean.norm(), atol=1e-5), intent
        assert torch.equal(model.classifier.bias, torch.zeros(len(intents)))
        # before any training, every toy example is nearest its own intent's mean far more often than not
        logits = model(**_no_types(tokenizer(data.texts, padding=True, return_tensors="pt"))).logits
    hits = sum(intents[p] == g for p, g in zip(logits.argmax(-1).tolist(), data.intents))
    assert hits / len(data) > 0.5


def _no_types(encoded):
    return {k: v for k, v in encoded.items() if k != "token_type_ids"}


def test_class_weights_come_from_the_training_counts(tiny_model):
    data = toy_data()
    result = fine_tune(
        data, model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
        train_config=TrainConfig(epochs=1, batch_size=8, weighting="sqrt_inverse"), seed=0,
    )
    counts = Counter(data.intents)
    expected = class_weights([counts[i] for i in result.intents], scheme="sqrt_inverse")
    assert result.class_weights == pytest.approx(list(expected))
    assert result.train_samples == len(data)  # one epoch sees every row once


@pytest.mark.slow  # two fine-tunes
def test_same_seed_same_model(tiny_model):
    kwargs = dict(model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
                  train_config=TrainConfig(epochs=2, batch_size=8), seed=5)
    a, b = fine_tune(toy_data(), **kwargs), fine_tune(toy_data(), **kwargs)
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        assert torch.equal(p, q), name


def test_one_intent_is_a_clear_error(tiny_model):
    data = IntentData(["a", "b"], ["x", "x"], "one.csv")
    with pytest.raises(IntentbalError, match="one.csv: expected at least 2 intents"):
        fine_tune(data, model_config=ModelConfig(name_or_path=str(tiny_model)),
                  train_config=TrainConfig(), seed=0)


def test_batches_cover_every_row_once_per_epoch():
    ids = [[1] * n for n in (5, 1, 3, 9, 2, 7, 4)]
    gen = torch.Generator().manual_seed(0)
    stream = shuffled_batches(ids, 3, gen)
    epoch = [next(stream) for _ in range(3)]
    assert sorted(i for b in epoch for i in b) == list(range(7))


def test_pad_builds_mask():
    ids, mask = pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_loss_adjustment_gives_the_loss_tau_times_the_log_prior(tiny_model, monkeypatch):
    from intentbal import train

    seen = []
    real = train.weighted_cross_entropy
    monkeypatch.setattr(train, "weighted_cross_entropy",
                        lambda logits, t, w, offset=None: seen.append(offset) or real(logits, t, w, offset))
    data = toy_data()
    result = fine_tune(
        data, model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
        train_config=TrainConfig(epochs=1, batch_size=8, weighting="none", loss_adjustment=0.5), seed=0,
    )
    counts = Counter(data.intents)
    total = sum(counts.values())
    expected = [0.5 * math.log(counts[i] / total) for i in result.intents]
    assert seen and all(o.tolist() == pytest.approx(expected, rel=1e-5) for o in seen)


def test_prototype_head_is_fp32_under_bf16_autocast(tiny_model):
    """Pooling, cosine head and bias run in fp32 whatever autocast the caller runs the encoder under."""
    from types import SimpleNamespace

    from intentbal.loading import load_for_training

    intents = sorted(set(toy_data().intents))
    tokenizer, model = load_for_training(ModelConfig(name_or_path=str(tiny_model), max_length=32), intents)
    model.eval()
    enc = _no_types(tokenizer(toy_data().texts, padding=True, return_tensors="pt"))
    with torch.no_grad():
        model.classifier.bias.copy_(torch.linspace(-3, 3, len(intents)))  # as after a logit adjustment
        # the hidden states an encoder gives under bf16 autocast, fixed so only the head's arithmetic differs
        hidden = model.encoder(**enc).last_hidden_state.to(torch.bfloat16)

    class Fixed(torch.nn.Module):
        def forward(self, **_):
            return SimpleNamespace(last_hidden_state=hidden)

    model.set_encoder(Fixed())
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(**enc).logits
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = torch.nn.functional.normalize((hidden.float() * mask).sum(1) / mask.sum(1), dim=-1)
        prototypes = torch.nn.functional.normalize(model.classifier.weight, dim=-1)
        full = model.config.scale * pooled @ prototypes.T + model.classifier.bias
    assert mixed.dtype == torch.float32
    # bf16 has 8 bits of mantissa: a logit near 20 computed in it is off by up to ~0.06
    assert (mixed - full).abs().max().item() < 1e-4
