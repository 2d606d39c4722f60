from pathlib import Path

import pytest

from intentbal import models
from intentbal.config import DEFAULT_MODEL
from intentbal.errors import IntentbalError


def test_default_model_resolves_to_the_embedded_copy():
    folder = Path(models.resolve_model(DEFAULT_MODEL))
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert models.sha256_file(folder / "model.safetensors") == models.EMBEDDED_SHA256


def test_checksum_mismatch_is_an_error(monkeypatch):
    monkeypatch.setattr(models, "EMBEDDED_SHA256", "0" * 64)
    with pytest.raises(IntentbalError, match="expected SHA-256 0000"):
        models.resolve_model(DEFAULT_MODEL)


def test_local_paths_must_be_model_folders(tmp_path):
    with pytest.raises(IntentbalError, match="found nothing"):
        models.resolve_model(str(tmp_path / "missing"))
    with pytest.raises(IntentbalError, match="no config.json"):
        models.resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert models.resolve_model(str(tmp_path)) == str(tmp_path)


def test_hub_names_pass_through():
    assert models.resolve_model("bert-base-uncased") == "bert-base-uncased"


def test_unknown_hub_model_offline_is_a_clear_error():
    with pytest.raises(IntentbalError, match="could not be loaded"):
        models.load_for_training("no-such-org/no-such-model", ["a", "b"])


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(IntentbalError, match="could not be loaded"):
        models.load_for_training(str(tmp_path), ["a", "b"])
