import json

import numpy as np
import pytest
import torch

from intentbal.cli import main
from intentbal.model import adjustment as adjust

from conftest import set_args, toy_rows, write_csv


def test_log_prior():
    prior = adjust.log_prior({"a": 30, "b": 10}, ["b", "a"])
    np.testing.assert_allclose(prior, np.log([0.25, 0.75]))
    with pytest.raises(ValueError):
        adjust.log_prior({"a": 3}, ["a", "b"])


def test_choose_tau_moves_decisions_towards_the_rare_intent():
    intents = ["frequent", "rare"]
    prior = adjust.log_prior({"frequent": 90, "rare": 10}, intents)
    # the model prefers "frequent" by a margin that a tau of about 1 removes
    log_probs = np.log(np.array([[0.7, 0.3]] * 4 + [[0.9, 0.1]] * 4))
    gold = ["rare"] * 4 + ["frequent"] * 4
    tau = adjust.choose_tau(log_probs, gold, intents, prior)
    assert 0 < tau <= 1.5
    predicted = [intents[i] for i in np.argmax(log_probs - tau * prior, axis=1)]
    assert adjust.macro_recall(predicted, gold) == 1.0
    assert adjust.macro_recall(["frequent"] * 8, gold) == 0.5
    # nothing to gain: the smallest tau wins the tie
    assert adjust.choose_tau(np.log(np.array([[0.9, 0.1], [0.1, 0.9]])), ["frequent", "rare"], intents, prior) == 0.0


def test_choose_tau_logs_every_candidates_score_at_debug_level(caplog):
    intents = ["frequent", "rare"]
    prior = adjust.log_prior({"frequent": 90, "rare": 10}, intents)
    with caplog.at_level("DEBUG", logger="intentbal.model.adjustment"):
        adjust.choose_tau(np.log(np.array([[0.7, 0.3], [0.9, 0.1]])), ["rare", "frequent"], intents, prior,
                          taus=(0.0, 1.0))
    assert caplog.messages == ["tau candidates, macro recall: 0 0.5000, 1 1.0000"]


def test_bake_shifts_the_logits_exactly(tiny_model):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=3).eval()
    ids = torch.tensor([[2, 10, 11, 3]])
    before = model(input_ids=ids).logits.detach().numpy()
    prior = np.log(np.array([0.7, 0.2, 0.1]))
    adjust.bake(model, prior, 1.5)
    after = model(input_ids=ids).logits.detach().numpy()
    np.testing.assert_allclose(after, before - 1.5 * prior, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # trains through the CLI for each setting
@pytest.mark.parametrize("setting, validation, expected", [
    ("auto", True, "validation"), ("auto", False, "default"), ("0", False, "given"), ("0.5", True, "given"),
])
def test_training_records_and_applies_the_adjustment(setting, validation, expected, tmp_path, fast_overrides):
    from transformers import pipeline

    from intentbal.inference.classifier import IntentClassifier

    train = write_csv(tmp_path / "train.csv", toy_rows())
    val = write_csv(tmp_path / "val.csv", [("where is my order now", "track_order"), ("stolen card", "fraud"),
                                           ("refund me", "refund"), ("password reset", "password")])
    sets = set_args([*fast_overrides, f"train.logit_adjustment={setting}"])
    extra = ["--validation", val] if validation else []
    out = tmp_path / "run"
    assert main([str(a) for a in ["train", "--train", train, "--output", out, *extra, *sets]]) == 0
    meta = json.loads((out / "model" / "intentbal.json").read_text())
    assert meta["logit_adjustment"]["chosen_on"] == expected
    if expected == "default":
        assert meta["logit_adjustment"]["tau"] == adjust.DEFAULT_TAU
    if setting == "0.5":
        assert meta["logit_adjustment"]["tau"] == 0.5
    # the saved folder predicts with the adjustment, in intentbal and in transformers alike
    texts = ["where is my parcel", "someone stole my card", "refund please", "forgot password"]
    ours, _ = IntentClassifier.load(out / "model").predict(texts)
    theirs = [r["label"] for r in pipeline("text-classification", model=str(out / "model"),
                                                trust_remote_code=True)(texts)]
    assert ours == theirs


@pytest.mark.slow  # trains through the CLI
def test_without_validation_data_the_recipe_holds_some_of_train_out(tmp_path, fast_overrides):
    """Only intents with at least 5 examples give any; the held-out rows are never trained on."""
    from intentbal.commands.train import train_run
    from intentbal.config import load_config
    from intentbal.data.inputs import load_split

    train = write_csv(tmp_path / "train.csv", toy_rows())
    sets = [o for o in fast_overrides if not o.startswith("data.validation_fraction")]
    config = load_config(overrides=[*sets, "data.validation_fraction=0.2"],
                         values={"data.train": train, "data.eval": train, "output_dir": tmp_path / "run"})
    split = load_split(config)
    assert split.validation_held_out
    assert sorted(set(split.validation.intents)) == ["refund", "track_order"]  # 6 and 8 examples; the others < 5
    assert not set(split.validation.texts) & set(split.train.texts)
    assert len(split.train) + len(split.validation) == len(toy_rows())

    run = train_run(config)
    assert run.adjustment.chosen_on == "held out of train"
    synthetic_sources = {p.source for p in run.evaluated.rows.provenance or [] if p is not None}
    assert not synthetic_sources & set(split.validation.texts)
    # no hold-out when the adjustment is fixed: nothing to choose
    fixed = config.model_copy(update={"train": config.train.model_copy(update={"logit_adjustment": 1.0})})
    assert load_split(fixed).validation is None
