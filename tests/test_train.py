import math
from collections import Counter

import pytest
import torch

from intentbal.config import ModelConfig, TrainConfig
from intentbal.data.types import IntentData
from intentbal.errors import IntentbalError
from intentbal.model.encoding import pad
from intentbal.training.batching import shuffled_batches
from intentbal.training.checkpoint import keep_fit, kept_fit
from intentbal.training.loop import fine_tune
from intentbal.training.losses import class_weights
from intentbal.training.results import EpochRecord

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
    from intentbal.model.encoding import encode
    from intentbal.model.loading import load_for_training
    from intentbal.model.prototypes import init_prototypes

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
    from intentbal.training import losses

    seen = []
    real = losses.weighted_cross_entropy
    monkeypatch.setattr(losses, "weighted_cross_entropy", lambda logits, t, w, offset=None, rows=None, margins=None:
                        seen.append(offset) or real(logits, t, w, offset, rows, margins))
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

    from intentbal.model.loading import load_for_training

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


def _losses_seen(monkeypatch):
    from intentbal.training import losses

    seen = []
    real = losses.weighted_cross_entropy

    def spy(logits, targets, weights, offset=None, rows=None, margins=None):
        loss = real(logits, targets, weights, offset, rows, margins)
        seen.append(loss.item())
        return loss

    monkeypatch.setattr(losses, "weighted_cross_entropy", spy)
    return seen


def test_history_holds_each_epochs_mean_loss_and_validation_macro_recall(tiny_model, monkeypatch):
    from intentbal.model.adjustment import macro_recall

    seen = _losses_seen(monkeypatch)
    data = toy_data()  # 21 rows in batches of 8: 3 steps an epoch, 8 steps for 2.5 epochs
    validation = IntentData(data.texts[::2] + ["an intent the model never saw"],
                            data.intents[::2] + ["unknown"], "validation.csv")
    result = fine_tune(data, model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
                       train_config=TrainConfig(epochs=2.5, batch_size=8, learning_rate=3e-3, precision="fp32"),
                       seed=0, validation=validation)  # fp32: the curve equals the model's own fp32 predictions
    assert [(r.epoch, r.step) for r in result.history] == [(1.0, 3), (2.0, 6), (2.6667, 8)]
    assert len(seen) == 8
    for record, steps in zip(result.history, (seen[0:3], seen[3:6], seen[6:8])):
        assert record.loss == pytest.approx(sum(steps) / len(steps), rel=1e-6)
    enc = result.tokenizer(validation.texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        pred = result.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.argmax(-1)
    final = macro_recall([result.intents[p] for p in pred.tolist()], validation.intents)
    assert result.history[-1].validation_macro_recall == pytest.approx(final)
    assert final <= 4 / 5  # the intent the model never saw counts as missed
    assert result.history[0].to_dict() == {"epoch": 1.0, "step": 3, "loss": result.history[0].loss,
                                           "validation_macro_recall": result.history[0].validation_macro_recall,
                                           "member": 0}


def test_validation_does_not_change_the_training(tiny_model):
    kwargs = dict(model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
                  train_config=TrainConfig(epochs=2, batch_size=8), seed=1)
    plain = fine_tune(toy_data(), **kwargs)
    checked = fine_tune(toy_data(), **kwargs, validation=toy_data())
    assert [r.validation_macro_recall for r in plain.history] == [None, None]
    assert all(0 <= r.validation_macro_recall <= 1 for r in checked.history)
    assert [r.loss for r in plain.history] == [r.loss for r in checked.history]
    for (name, p), q in zip(plain.model.named_parameters(), checked.model.parameters()):
        assert torch.equal(p, q), name


def test_a_resumed_run_has_the_history_of_an_uninterrupted_one(tiny_model, tmp_path):
    model_config = ModelConfig(name_or_path=str(tiny_model), max_length=32)
    # 9 steps of 3 an epoch: the last checkpoint, step 8, falls inside the third epoch
    train_config = TrainConfig(epochs=3, batch_size=8, learning_rate=3e-3, save_steps=4)
    first = fine_tune(toy_data(), model_config=model_config, train_config=train_config, seed=0,
                      checkpoint_dir=tmp_path / "ckpt", validation=toy_data())
    resumed = fine_tune(toy_data(), model_config=model_config, train_config=train_config, seed=0,
                        checkpoint_dir=tmp_path / "ckpt", resume=True, validation=toy_data())
    assert resumed.resumed_from == 8
    assert resumed.history == first.history and [r.step for r in first.history] == [3, 6, 9]
    # a finished fit kept for a resume keeps its history too
    keep_fit(tmp_path / "fit.safetensors", first, toy_data(), model_config=model_config, train_config=train_config,
             seed=0)
    kept = kept_fit(tmp_path / "fit.safetensors", toy_data(), model_config=model_config, train_config=train_config,
                    seed=0)
    assert kept is not None and kept.history == first.history
    assert all(isinstance(r, EpochRecord) for r in kept.history)


def test_a_bar_that_takes_notes_shows_the_loss(tiny_model):
    class Bars:
        def __init__(self):
            self.calls, self.notes = [], []

        def __call__(self, stage, done, total, /):
            self.calls.append((stage, done, total))

        def note(self, stage, text):
            self.notes.append((stage, text))

    bars, counted = Bars(), []
    kwargs = dict(model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
                  train_config=TrainConfig(epochs=2, batch_size=8), seed=0)
    result = fine_tune(toy_data(), **kwargs, progress=bars)
    assert bars.calls[-1] == ("train", 6, 6)
    notes = [text for stage, text in bars.notes if stage == "train"]
    assert all(f"loss {r.loss:.4f}" in notes for r in result.history)  # each epoch's mean, when it ends
    assert notes[-1] == f"loss {result.history[-1].loss:.4f}"
    fine_tune(toy_data(), **kwargs, progress=lambda *call: counted.append(call))  # a plain callable only counts
    assert counted == bars.calls
