"""A teacher from another model (self_training.teacher): it labels the pool, the student ships."""

import json
import shutil
from pathlib import Path

import pytest

from intentbal.config import load_config
from intentbal.model.record import ModelRecord, TauRecord, portable
from intentbal.reports.card import model_card
from intentbal.training.recipe import fit, teacher_config

from conftest import one_line_error, run_cli, set_args, toy_data, toy_rows, write_csv

POOL = ["where did my parcel go", "give my money back", "i lost my password again", "card stolen today",
        "track it please"]


@pytest.fixture(scope="module")
def wider_model(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """The tiny BERT's tokenizer with a wider, deeper random encoder: another model for the teacher."""
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("wider-bert")
    shutil.copytree(tiny_model, folder, dirs_exist_ok=True)
    config = json.loads((tiny_model / "config.json").read_text())
    torch.manual_seed(1)
    BertModel(BertConfig(vocab_size=config["vocab_size"], hidden_size=48, num_hidden_layers=3, num_attention_heads=3,
                         intermediate_size=96, max_position_embeddings=128)).save_pretrained(folder)
    return folder


def test_the_teacher_config_swaps_the_model_and_nothing_else(tiny_model, wider_model):
    config = load_config(overrides=[f"model.name_or_path={tiny_model}", "train.epochs=3"])
    assert teacher_config(config) is config  # no teacher set: the recipe's own model
    same = config.model_copy(update={"self_training": config.self_training.model_copy(
        update={"teacher": str(tiny_model)})})
    assert teacher_config(same) is same
    other = load_config(overrides=[f"model.name_or_path={tiny_model}", "train.epochs=3",
                                   f"self_training.teacher={wider_model}"])
    made = teacher_config(other)
    assert made.model.name_or_path == str(wider_model)
    assert made.model_dump(exclude={"model"}) == other.model_dump(exclude={"model"})
    assert made.model.model_dump(exclude={"name_or_path"}) == other.model.model_dump(exclude={"name_or_path"})


def test_the_teacher_from_another_model_labels_the_pool_and_the_student_stays_the_recipes_model(
        tiny_model, wider_model):
    config = load_config(overrides=[f"model.name_or_path={tiny_model}", "model.max_length=32", "train.epochs=2",
                                    "train.batch_size=8", "train.learning_rate=0.003", "train.refit=off",
                                    "train.precision=fp32", "self_training.threshold=0", "self_training.alpha=0",
                                    f"self_training.teacher={wider_model}"])
    student = fit(config, toy_data(), unlabeled=POOL)
    assert student.teacher is not None
    assert student.teacher.classifier.model.config.encoder["hidden_size"] == 48
    assert student.classifier.model.config.encoder["hidden_size"] == 32
    assert {p.text for p in student.pseudo} == set(POOL)  # threshold 0: the teacher's every label is kept
    teacher_labels = dict(zip(POOL, student.teacher.classifier.predict(POOL)[0]))
    assert all(p.intent == teacher_labels[p.text] for p in student.pseudo)


def test_a_saved_record_names_a_local_teacher_by_its_folder_only(tiny_model, wider_model):
    config = load_config(overrides=[f"model.name_or_path={tiny_model}", f"self_training.teacher={wider_model}",
                                    "data.unlabeled=pool.csv"])
    kept = portable(config)
    assert kept.self_training.teacher == f"./{wider_model.name}"
    assert portable(load_config()).self_training.teacher is None
    record = ModelRecord(config=kept, train_counts={"a": 2, "b": 40}, max_length=64, pseudo_counts={"a": 3},
                         logit_adjustment=TauRecord(tau=1.0, chosen_on="default"))
    card = model_card(name="bot", record=record, report=None, eval_name=None, rare_max=10, frequent_min=50)
    assert f"3 unlabeled utterances borrowed (a teacher fine-tuned from ./{wider_model.name} confidence" in card
    assert str(wider_model.parent) not in card


def test_a_missing_teacher_is_one_clear_error_and_leaves_no_run(tmp_path, fast_overrides, capsys):
    train = write_csv(tmp_path / "train.csv", toy_rows())
    pool = write_csv(tmp_path / "pool.csv", [(t,) for t in POOL], header=("text",))
    out = tmp_path / "run"
    code = run_cli("train", "--train", train, "--unlabeled", pool, "--output", out,
                   *set_args([*fast_overrides, "train.epochs=1", f"self_training.teacher={tmp_path / 'nowhere'}"]))
    assert code != 0
    one_line_error(capsys, f"model {tmp_path / 'nowhere'}: expected a Hugging Face model folder with config.json")
    assert not out.exists()
