"""train.trainable_layers: the frozen lower layers, cached once per row, and their fallbacks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import read_csv, run_cli, set_args, toy_data, toy_rows, write_csv

TEXTS = ["where is my order", "refund", "reset my password please now", "stolen card", "an unseen sentence here"]


def _model(tiny_model: Path, head: str = "prototype"):
    import torch

    from intentbal.config import ModelConfig
    from intentbal.model.loading import load_for_training

    torch.manual_seed(0)
    config = ModelConfig(name_or_path=str(tiny_model), max_length=32, head=head)
    return load_for_training(config, sorted(set(toy_data().intents)))


def _batch(tokenizer, texts: list[str]):
    from intentbal.model.encoding import encode, pad, pad_id_of

    ids, _ = encode(tokenizer, texts, 32)
    return ids, pad(ids, pad_id_of(tokenizer))


@pytest.mark.parametrize("head", ["prototype", "standard"])
@pytest.mark.parametrize("precomputed", [True, False])
def test_cached_path_gives_the_full_models_logits(tiny_model: Path, head: str, precomputed: bool) -> None:
    import torch

    from intentbal.training.frozen import freeze_lower

    tokenizer, model = _model(tiny_model, head)
    model.eval()
    ids, (input_ids, mask) = _batch(tokenizer, TEXTS)  # lengths differ: the batch is padded
    assert not bool(mask.all())
    with torch.no_grad():
        full = model(input_ids=input_ids, attention_mask=mask).logits
    frozen = freeze_lower(model, trainable=1, rows=ids[:3] if precomputed else [], device=torch.device("cpu"))
    assert frozen is not None and frozen.cached
    with torch.no_grad():
        cached = model(input_ids=input_ids, attention_mask=mask).logits
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)
    encoder_params = sum(p.numel() for n, p in model.named_parameters() if "layer" in n)
    frozen.restore()
    assert sum(p.numel() for n, p in model.named_parameters() if "layer" in n) == 2 * encoder_params


def test_cache_too_large_runs_the_frozen_layers_each_step(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from intentbal.training import frozen as frozen_module

    monkeypatch.setattr(frozen_module, "CACHE_LIMIT_BYTES", 0)
    tokenizer, model = _model(tiny_model)
    model.eval()
    ids, (input_ids, mask) = _batch(tokenizer, TEXTS)
    with torch.no_grad():
        full = model(input_ids=input_ids, attention_mask=mask).logits
    frozen = frozen_module.freeze_lower(model, trainable=1, rows=ids, device=torch.device("cpu"))
    assert frozen is not None and not frozen.cached
    with torch.no_grad():
        cached = model(input_ids=input_ids, attention_mask=mask).logits
    assert not model.encoder.embeddings.memo  # nothing kept
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)


def test_all_layers_trainable_changes_nothing(tiny_model: Path) -> None:
    import torch

    from intentbal.training.frozen import freeze_lower

    _, model = _model(tiny_model)
    assert freeze_lower(model, trainable=None, rows=[], device=torch.device("cpu")) is None
    assert freeze_lower(model, trainable=2, rows=[], device=torch.device("cpu")) is None  # the tiny model has 2


def _train(tiny_model: Path, **train: object):
    from intentbal.config import ModelConfig, TrainConfig
    from intentbal.training.loop import fine_tune

    return fine_tune(toy_data(), model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
                     train_config=TrainConfig(epochs=3, batch_size=8, learning_rate=0.003, save_steps=0, **train),
                     seed=0)


@pytest.mark.parametrize("smote", [False, True])
def test_frozen_layers_keep_their_weights_and_the_top_layer_trains(tiny_model: Path, smote: bool) -> None:
    import torch

    _, before = _model(tiny_model)
    result = _train(tiny_model, trainable_layers=1, embedding_smote=smote)
    start, end = before.state_dict(), result.model.state_dict()
    assert start.keys() == end.keys()  # the full model again, every layer in it
    frozen = [k for k in start if ".embeddings." in k or ".layer.0." in k]
    top = [k for k in start if ".layer.1." in k and k.endswith("weight")]
    assert frozen and top
    assert all(torch.equal(start[k], end[k]) for k in frozen)
    assert all(not torch.equal(start[k], end[k]) for k in top)


def test_default_recipe_trains_the_lower_layers(tiny_model: Path) -> None:
    import torch

    _, before = _model(tiny_model)
    end = _train(tiny_model, trainable_layers=None).model.state_dict()
    assert not torch.equal(before.state_dict()["encoder.encoder.layer.0.attention.self.query.weight"],
                           end["encoder.encoder.layer.0.attention.self.query.weight"])


def test_a_model_trained_with_frozen_layers_saves_and_loads_as_a_full_folder(
    tiny_model: Path, tmp_path: Path, fast_overrides: list[str]
) -> None:
    from transformers import AutoModelForSequenceClassification

    train = write_csv(tmp_path / "train.csv", toy_rows())
    data = write_csv(tmp_path / "data.csv", [("where is my parcel now", "track_order"), ("refund me", "refund")])
    out = tmp_path / "run"
    sets = set_args([*fast_overrides, "train.trainable_layers=1", "train.epochs=3"])
    assert run_cli("train", "--train", train, "--output", out, *sets) == 0
    model = AutoModelForSequenceClassification.from_pretrained(out / "model", trust_remote_code=True)
    names = {n for n, _ in model.named_parameters()}
    assert any(".layer.0." in n for n in names) and any(".layer.1." in n for n in names)
    assert run_cli("predict", "--model", out / "model", "--input", data, "--output", tmp_path / "pred.csv") == 0
    assert len(read_csv(tmp_path / "pred.csv")) == 2


def _tiny_distilbert(tiny_model: Path, folder: Path) -> Path:
    import torch
    from transformers import DistilBertConfig, DistilBertModel

    shutil.copytree(tiny_model, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    (folder / "config.json").unlink()
    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=400, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=128)
    DistilBertModel(config).save_pretrained(folder)
    return folder


def test_another_architecture_is_frozen_without_the_cache(tiny_model: Path, tmp_path: Path) -> None:
    import torch

    from intentbal.config import ModelConfig
    from intentbal.model.loading import load_for_training

    folder = _tiny_distilbert(tiny_model, tmp_path / "distilbert")
    intents = sorted(set(toy_data().intents))
    _, before = load_for_training(ModelConfig(name_or_path=str(folder), max_length=32), intents)
    result = _train(folder, trainable_layers=1)
    start, end = before.state_dict(), result.model.state_dict()
    frozen = [k for k in start if ".embeddings." in k or ".layer.0." in k]
    top = [k for k in start if ".layer.1." in k and k.endswith("weight")]
    assert frozen and top
    assert all(torch.equal(start[k], end[k]) for k in frozen)
    assert all(not torch.equal(start[k], end[k]) for k in top)
    assert not result.warnings
    assert all(p.requires_grad for p in result.model.parameters())  # restored after training


def test_a_model_without_a_layer_list_trains_every_layer_and_says_so() -> None:
    import torch
    from transformers import BertConfig

    from intentbal.training.frozen import freeze_lower

    class Stub(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = BertConfig(num_hidden_layers=3)
            self.body = torch.nn.Linear(4, 4)

        @property
        def base_model(self) -> torch.nn.Module:
            return self

    stub = Stub()
    frozen = freeze_lower(stub, trainable=1, rows=[], device=torch.device("cpu"))
    assert frozen is not None and frozen.warning and "train.trainable_layers=1" in frozen.warning
    assert all(p.requires_grad for p in stub.parameters())


def test_a_resumed_run_with_frozen_layers_ends_where_the_whole_run_ends(tiny_model: Path, tmp_path: Path) -> None:
    import torch

    from intentbal.config import ModelConfig, TrainConfig
    from intentbal.training.loop import fine_tune

    settings = {"model_config": ModelConfig(name_or_path=str(tiny_model), max_length=32), "seed": 0,
                "train_config": TrainConfig(epochs=3, batch_size=8, learning_rate=0.003, save_steps=4,
                                            trainable_layers=1),
                "checkpoint_dir": tmp_path / "checkpoint"}
    whole = fine_tune(toy_data(), **settings).model.state_dict()  # leaves its last checkpoint behind
    resumed = fine_tune(toy_data(), resume=True, **settings)
    assert resumed.resumed_from == 8  # 21 rows in batches of 8: 9 steps, the last checkpoint at step 8
    assert all(torch.equal(whole[k], v) for k, v in resumed.model.state_dict().items())


def test_a_batch_reads_its_cached_states_as_one_contiguous_block(tiny_model: Path) -> None:
    """The states a batch reads are laid out as freshly computed ones: a strided view of the cache
    sends the trained layers down other kernels, whose floats round differently (a model trained
    before the cache was one tensor must come out bit for bit again)."""
    import torch

    from intentbal.training.frozen import freeze_lower

    tokenizer, model = _model(tiny_model)
    ids, (input_ids, _) = _batch(tokenizer, TEXTS)
    frozen = freeze_lower(model, trainable=1, rows=ids, device=torch.device("cpu"), width=32)
    assert frozen is not None and frozen.bottom is not None
    frozen.bottom.select(torch.tensor([3, 0, 2]))
    with torch.no_grad():
        states = frozen.bottom(input_ids=input_ids[[3, 0, 2]])
    assert states.is_contiguous() and states.shape[:2] == (3, input_ids.shape[1])
    assert torch.equal(states, frozen.bottom.states[[3, 0, 2], : input_ids.shape[1]])


def test_prototypes_started_from_the_cache_equal_the_full_models(tiny_model: Path) -> None:
    import torch

    from intentbal.model.prototypes import init_prototypes
    from intentbal.training.frozen import freeze_lower

    data = toy_data()
    intents = sorted(set(data.intents))
    tokenizer, model = _model(tiny_model)
    ids, _ = _batch(tokenizer, data.texts)
    targets = torch.tensor([intents.index(i) for i in data.intents])
    init_prototypes(model, ids, targets, pad_id=0, device=torch.device("cpu"), batch_size=3)
    full = model.classifier.weight.detach().clone()
    model.classifier.weight.data.zero_()
    frozen = freeze_lower(model, trainable=1, rows=ids, device=torch.device("cpu"))
    assert frozen is not None and frozen.bottom is not None
    init_prototypes(model, ids, targets, pad_id=0, device=torch.device("cpu"), batch_size=3, cached=frozen.bottom)
    assert not frozen.bottom.memo  # every example's states came from the cache, none was computed again
    assert frozen.bottom.selected is None
    torch.testing.assert_close(model.classifier.weight.detach(), full, atol=1e-5, rtol=0)
    frozen.restore()
