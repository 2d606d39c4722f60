"""Finding and loading models, and the model folder IntentClassifier saves and loads."""

import json
from pathlib import Path

import numpy as np
import pytest

from intentbal.config import DEFAULT_MODEL, ModelConfig
from intentbal.errors import IntentbalError
from intentbal.model import loading


def test_default_model_resolves_to_the_embedded_copy():
    folder = Path(loading.resolve_model(DEFAULT_MODEL))
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert loading.sha256_file(folder / "model.safetensors") == loading.EMBEDDED_SHA256


def test_checksum_mismatch_is_an_error(monkeypatch):
    monkeypatch.setattr(loading, "EMBEDDED_SHA256", "0" * 64)
    with pytest.raises(IntentbalError, match="expected SHA-256 0000"):
        loading.resolve_model(DEFAULT_MODEL)


def test_local_paths_must_be_model_folders(tmp_path):
    with pytest.raises(IntentbalError, match="found nothing"):
        loading.resolve_model(str(tmp_path / "missing"))
    with pytest.raises(IntentbalError, match="no config.json"):
        loading.resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert loading.resolve_model(str(tmp_path)) == str(tmp_path)


def test_hub_names_pass_through():
    assert loading.resolve_model("bert-base-uncased") == "bert-base-uncased"


def test_unknown_hub_model_offline_is_a_clear_error():
    with pytest.raises(IntentbalError, match="could not be loaded"):
        loading.load_for_training(ModelConfig(name_or_path="no-such-org/no-such-model"), ["a", "b"])


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(IntentbalError, match="could not be loaded"):
        loading.load_for_training(ModelConfig(name_or_path=str(tmp_path)), ["a", "b"])


def test_pickle_weights_are_refused_unless_allowed(tmp_path, tiny_model):
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model, folder)
    weights = folder / "model.safetensors"
    torch.save(load_file(weights), folder / "pytorch_model.bin")
    weights.unlink()
    with pytest.raises(IntentbalError, match="found only pickle-based pytorch_model.bin") as info:
        loading.load_for_training(ModelConfig(name_or_path=str(folder)), ["a", "b"])
    assert "model.allow_pickle=true" in str(info.value)
    _, model = loading.load_for_training(ModelConfig(name_or_path=str(folder), allow_pickle=True), ["a", "b"])
    assert model.config.num_labels == 2


@pytest.mark.parametrize("head, auto_class", [("prototype", "AutoModel"),
                                              ("standard", "AutoModelForSequenceClassification")])
def test_trust_remote_code_is_off_by_default_and_warns_when_on(tiny_model, monkeypatch, head, auto_class):
    import transformers

    seen = []
    real = getattr(transformers, auto_class).from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return real(*args, **kwargs)

    monkeypatch.setattr(getattr(transformers, auto_class), "from_pretrained", spy)
    loading.load_for_training(ModelConfig(name_or_path=str(tiny_model), head=head), ["a", "b"])
    with pytest.warns(UserWarning, match="trust_remote_code is on"):
        loading.load_for_training(ModelConfig(name_or_path=str(tiny_model), trust_remote_code=True, head=head),
                                 ["a", "b"])
    assert seen == [False, True]


LONG_AND_SHORT = ["where is my parcel", "refund please", "tell me a joke", "stolen card",
                  "track my order and refund my payment " * 6]


def test_save_then_load_gives_the_same_classifier(oos_run, tmp_path):
    from intentbal.inference.classifier import IntentClassifier

    clf = IntentClassifier.load(oos_run / "model", backend="torch")
    assert clf.fallback_threshold is not None
    clf.max_length = 8  # shorter than the saved 32: the long text and some short ones are cut
    own_limit = clf.tokenizer.model_max_length
    folder = tmp_path / "new" / "model"
    clf.save(folder)
    assert clf.tokenizer.model_max_length == own_limit
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "intentbal.json", "model.safetensors",
                                                         "modeling.py", "tokenizer.json", "tokenizer_config.json"]
    assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] == 8

    back = IntentClassifier.load(folder, backend="torch")
    assert back.max_length == 8 and back.intents == clf.intents
    assert back.meta == {**clf.meta, "max_length": 8}
    assert (back.fallback_threshold, back.fallback_intent) == (clf.fallback_threshold, clf.fallback_intent)
    np.testing.assert_allclose(back.proba(LONG_AND_SHORT), clf.proba(LONG_AND_SHORT), atol=1e-6)
    assert back.truncated == clf.truncated > 0
    assert back.predict(LONG_AND_SHORT)[0] == clf.predict(LONG_AND_SHORT)[0]


def test_only_the_torch_backend_can_be_saved(tmp_path):
    from intentbal.inference.classifier import IntentClassifier

    clf = IntentClassifier(model=object(), tokenizer=object(), intents=["a", "b"], max_length=8,
                           backend="onnx")
    with pytest.raises(IntentbalError, match="expected a classifier on the torch backend to save, found the onnx") \
            as info:
        clf.save(tmp_path / "model")
    assert "\n" not in str(info.value) and "backend='torch'" in str(info.value)
    assert not (tmp_path / "model").exists()


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path):
    from intentbal.inference.classifier import IntentClassifier

    (tmp_path / "taken").write_text("a file, not a folder")
    clf = IntentClassifier(model=object(), tokenizer=object(), intents=["a", "b"], max_length=8)
    with pytest.raises(IntentbalError, match="could not write the model .*; free disk space or choose a writable") \
            as info:
        clf.save(tmp_path / "taken" / "model")
    assert "\n" not in str(info.value)
