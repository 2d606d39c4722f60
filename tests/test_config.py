from pathlib import Path

import pytest

from intentbal.config import Config, load_config
from intentbal.errors import IntentbalError
from intentbal.io.config_yaml import default_yaml

ROOT = Path(__file__).resolve().parent.parent


def error_of(**kwargs):
    with pytest.raises(IntentbalError) as info:
        load_config(**kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_configs_default_yaml_is_generated_from_the_models():
    assert (ROOT / "configs" / "default.yaml").read_text(encoding="utf-8") == default_yaml()
    loaded = load_config(ROOT / "configs" / "default.yaml")
    assert loaded.model_dump(exclude={"output_dir"}) == Config().model_dump(exclude={"output_dir"})
    assert loaded.output_dir == ROOT / "runs" / "intentbal"  # the project's runs/, not configs/runs/


def test_overrides_are_typed():
    c = load_config(overrides=["train.epochs=3", "train.learning_rate=1e-3", "seed=7",
                               "augment.augmenters=[keyboard, ocr]", "data.intent_column=category"])
    assert c.train.epochs == 3 and c.train.learning_rate == 1e-3 and c.seed == 7
    assert c.augment.augmenters == ["keyboard", "ocr"]
    assert c.data.intent_column == "category"


def test_unknown_key_wrong_type_bad_value():
    assert "unknown key 'train.epoch'" in error_of(overrides=["train.epoch=3"])
    msg = error_of(overrides=["train.batch_size=lots"])
    assert "train.batch_size" in msg and "'lots'" in msg
    msg = error_of(overrides=["train.epochs=-1"])
    assert "train.epochs" in msg and "greater than 0" in msg
    msg = error_of(overrides=["augment.target_count=0"])
    assert "augment.target_count" in msg
    msg = error_of(overrides=["train.weighting=focal"])
    assert "train.weighting" in msg and "'inverse'" in msg and "'focal'" in msg
    msg = error_of(overrides=["augment.augmenters=[keyboard, backtranslate]"])
    assert "augment.augmenters" in msg and "backtranslate" in msg
    assert "KEY=VALUE" in error_of(overrides=["train.epochs"])


def test_file_errors_and_relative_paths(tmp_path):
    cfg = tmp_path / "sub" / "c.yaml"
    cfg.parent.mkdir()
    cfg.write_text("data:\n  train: ../d/train.csv\noutput_dir: out\ntrain:\n  epochs: 2\n")
    c = load_config(cfg)
    assert c.data.train == tmp_path / "d" / "train.csv"
    assert c.output_dir == tmp_path / "sub" / "out"
    assert "expected a YAML file" in error_of(path=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    assert "bad.yaml:2:1: YAML syntax error" in error_of(path=bad)
    bad.write_text("- a list\n")
    assert "expected a mapping" in error_of(path=bad)
    bad.write_text("train:\n  epochs: 2\n  colour: red\n")
    msg = error_of(path=bad)
    assert str(bad) in msg and "unknown key 'train.colour'" in msg


def test_profile_thresholds_must_be_ordered():
    assert "frequent_min" in error_of(overrides=["profile.rare_max=60"])


def test_cli_paths_are_taken_as_is_not_as_yaml(tmp_path):
    odd = tmp_path / "true"
    c = load_config(overrides=["train.epochs=2"], values={"data.train": str(odd), "output_dir": "1e3"})
    assert c.data.train == odd and c.output_dir == Path("1e3")
