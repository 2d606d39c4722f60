"""The options that work on the prototype head's sentence embeddings (``TrainConfig.prototype_options``)
are refused with the standard head: by ``fine_tune`` on the model itself, and by the CLI before any work."""

import pytest

from intentbal.config import ModelConfig, TrainConfig, load_config
from intentbal.errors import IntentbalError
from intentbal.training.loop import fine_tune

from conftest import one_line_error, run_cli, set_args, toy_data

# each option turned on, as TrainConfig fields, and the setting that turns it off
ON = {
    "embedding_smote": (True, "train.embedding_smote=false"),
    "contrastive_weight": (0.5, "train.contrastive_weight=0"),
    "contrastive_epochs": (1, "train.contrastive_epochs=0"),
    "neighbour_margin": (2.0, "train.neighbour_margin=0"),
}


def test_each_option_names_the_setting_that_turns_it_off():
    assert TrainConfig().prototype_options() == []
    for field, (value, off) in ON.items():
        assert TrainConfig(**{field: value}).prototype_options() == [off]


@pytest.mark.parametrize("field", ON)
def test_fine_tune_refuses_the_option_with_the_standard_head(field, tiny_model):
    value, _ = ON[field]
    with pytest.raises(IntentbalError, match=f"train.{field}: expected model.head=prototype"):
        fine_tune(toy_data(), model_config=ModelConfig(name_or_path=str(tiny_model), head="standard"),
                  train_config=TrainConfig(epochs=1, batch_size=8, **{field: value}), seed=0)


@pytest.mark.parametrize("field", ON)
def test_the_cli_refuses_the_option_with_the_standard_head_before_any_work(field, toy_csv, tmp_path, capsys):
    value, off = ON[field]
    on = f"train.{field}={str(value).lower()}"
    code = run_cli("train", "--train", toy_csv, "--output", tmp_path / "run", *set_args(["model.head=standard", on]))
    assert code == 2
    one_line_error(capsys, f"config: train.{field}: expected model.head=prototype", "found model.head=standard",
                   f"set model.head=prototype or {off}")
    assert not (tmp_path / "run").exists()
    assert load_config(overrides=["model.head=standard"]).model.head == "standard"  # alone it is fine
