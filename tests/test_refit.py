"""The shipped model is refit on every training row once tau and the report are measured on hold-outs."""

import csv
import json
from collections import Counter

import numpy as np
import pytest
import torch

from conftest import run_cli, toy_rows, write_csv

ROWS = len(toy_rows())
EPOCHS = 3


def recipe(fast_overrides: list[str], *extra: str) -> list[str]:
    """The fast settings without augmentation or intent names (a fit sees exactly its rows) and with
    the default validation hold-out, so both an eval and a validation split are held out of the toy data."""
    keep = [o for o in fast_overrides if not o.startswith(("augment.", "data.validation_fraction"))]
    return [*keep, "augment.enabled=false", "train.intent_names=off", f"train.epochs={EPOCHS}", *extra]


def train(tmp_path, name: str, overrides: list[str]) -> dict:
    data = tmp_path / "train.csv"
    if not data.exists():
        write_csv(data, toy_rows())
    out = tmp_path / name
    assert run_cli("train", "--train", data, "--output", out, *[x for o in overrides for x in ("--set", o)]) == 0
    files = ("model/intentbal.json", "train_metrics.json", "report.json")
    return {"out": out, **{f.split("/")[-1].split(".")[0]: json.loads((out / f).read_text()) for f in files}}


def weights_of(out) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(out / "model" / "model.safetensors")


def bias_of(out) -> torch.Tensor:
    return weights_of(out)["classifier.bias"]


def test_refit_ships_a_model_trained_on_every_training_row(tmp_path, fast_overrides, capsys):
    run = train(tmp_path, "run", recipe(fast_overrides))
    printed = capsys.readouterr().out
    meta, metrics, summary = run["intentbal"], run["train_metrics"], run["report"]["summary"]
    assert meta["train_counts"] == dict(Counter(i for _, i in toy_rows()))
    assert meta["refit"] is True and meta["logit_adjustment"]["chosen_on"] == "held out of train"
    assert metrics["refit"] is True and metrics["train_rows"] == ROWS
    assert metrics["train_samples"] == EPOCHS * ROWS  # every row, every epoch

    held = summary["refit"]["held_out_rows"]
    assert summary["refit"] == {"rows": ROWS, "held_out_rows": held, "validation_rows": 0,
                                "reported_on": "model trained without the held-out rows"}
    support = sum(r["support"] for r in run["report"]["intents"])
    assert held > support > 0, "both the eval and the validation rows were held out of the evaluated model"
    evaluated = metrics["evaluated_fit"]
    assert evaluated["train_rows"] == ROWS - held and evaluated["train_samples"] == EPOCHS * (ROWS - held)
    assert sum(r["train_count"] for r in run["report"]["intents"]) == ROWS - held  # the report's model's counts

    note = f"the shipped model was then refit on all {ROWS} training rows"
    for name in ("report.md", "report.html"):
        assert note in (run["out"] / name).read_text(), name
    assert note in printed and f"held-out rows (the model reported on), then refit on all {ROWS} rows" in printed


def test_refit_false_ships_the_evaluated_model(tmp_path, fast_overrides):
    from intentbal.inference.classifier import IntentClassifier

    run = train(tmp_path, "run", recipe(fast_overrides, "train.refit=false"))
    metrics, summary = run["train_metrics"], run["report"]["summary"]
    assert metrics["refit"] is False and "evaluated_fit" not in metrics and "refit" not in summary
    assert run["intentbal"]["refit"] is False
    reported = {r["intent"]: r["train_count"] for r in run["report"]["intents"]}
    assert run["intentbal"]["train_counts"] == reported and sum(reported.values()) < ROWS
    assert metrics["train_samples"] == EPOCHS * metrics["train_rows"] == EPOCHS * sum(reported.values())
    with open(run["out"] / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    predicted, confidence = IntentClassifier.load(run["out"] / "model").predict([r["text"] for r in rows])
    assert predicted == [r["prediction"] for r in rows]
    assert confidence == pytest.approx([float(r["confidence"]) for r in rows], abs=1e-4)


def test_the_shipped_model_carries_the_tau_chosen_on_the_hold_out(tmp_path, fast_overrides, monkeypatch):
    from intentbal.model import adjustment as adjust

    chosen_on = []

    def choose_tau(log_probs, gold, intents, prior, taus=adjust.TAUS):
        chosen_on.append(list(gold))
        return 1.75

    monkeypatch.setattr(adjust, "choose_tau", choose_tau)
    tuned = train(tmp_path, "tuned", recipe(fast_overrides))
    assert tuned["intentbal"]["logit_adjustment"] == {"tau": 1.75, "chosen_on": "held out of train"}
    assert len(chosen_on) == 1 and 0 < len(chosen_on[0]) < tuned["report"]["summary"]["refit"]["held_out_rows"]
    # the same refit (all rows, same recipe and seed) without any adjustment
    plain = train(tmp_path, "plain", recipe(fast_overrides, "train.logit_adjustment=0"))
    assert plain["train_metrics"]["refit"] is True
    counts = tuned["intentbal"]["train_counts"]  # the refit's rows: the prior of the shipped model
    intents = sorted(counts)
    expected = bias_of(plain["out"]).numpy() - 1.75 * adjust.log_prior(counts, intents)
    np.testing.assert_allclose(bias_of(tuned["out"]).numpy(), expected, atol=1e-5)


def test_refit_train_chooses_its_own_tau_on_the_validation_file(tmp_path, fast_overrides, monkeypatch, capsys):
    """With ``train.refit=train`` the validation file is never trained on, so the shipped model's tau
    can be chosen for it there."""
    from intentbal.model import adjustment as adjust

    chosen, seen = iter([0.5, 1.75]), []

    def choose_tau(log_probs, gold, intents, prior, taus=adjust.TAUS):
        seen.append((list(gold), len(log_probs)))
        return next(chosen)

    monkeypatch.setattr(adjust, "choose_tau", choose_tau)
    validation = [("where is my parcel", "track_order"), ("someone stole my card", "fraud"),
                  ("refund please", "refund"), ("forgot password", "password")]
    write_csv(tmp_path / "train.csv", toy_rows())
    out = tmp_path / "run"
    args = ["--train", tmp_path / "train.csv", "--validation", write_csv(tmp_path / "val.csv", validation)]
    overrides = recipe(fast_overrides, "train.refit=train")
    assert run_cli("train", *args, "--output", out, *[x for o in overrides for x in ("--set", o)]) == 0
    gold = [i for _, i in validation]
    assert seen == [(gold, 4), (gold, 4)], "the evaluated model, then the refit, each on the validation file"
    meta = json.loads((out / "model" / "intentbal.json").read_text())
    assert meta["refit"] is True and meta["logit_adjustment"] == {"tau": 1.75, "chosen_on": "validation"}
    assert "logit adjustment tau 1.75 (chosen on the validation data; 0.5 for the model reported on)" in \
        capsys.readouterr().out


def test_refit_all_trains_the_shipped_model_on_the_validation_file_too(tmp_path, fast_overrides, monkeypatch,
                                                                      capsys):
    """The default refit learns from every labelled row the user gave: the validation file's rows of
    training intents join it (never out-of-scope rows or intents train lacks), and since the refit
    trains on them, it takes the tau chosen on them for the evaluated model."""
    from intentbal.data.overlap import seen_texts
    from intentbal.model import adjustment as adjust

    seen = []

    def choose_tau(log_probs, gold, intents, prior, taus=adjust.TAUS):
        seen.append(list(gold))
        return 1.25

    monkeypatch.setattr(adjust, "choose_tau", choose_tau)
    known = [("where is my parcel", "track_order"), ("my card was stolen", "fraud"), ("refund please", "refund")]
    validation = [*known, ("what is the weather", "oos"), ("book me a flight", "travel")]
    write_csv(tmp_path / "train.csv", toy_rows())
    out = tmp_path / "run"
    args = ["--train", tmp_path / "train.csv", "--validation", write_csv(tmp_path / "val.csv", validation)]
    overrides = recipe(fast_overrides, "data.oos_label=oos")
    assert run_cli("train", *args, "--output", out, *[x for o in overrides for x in ("--set", o)]) == 0
    assert len(seen) == 1, "tau is chosen once, for the evaluated model"
    meta = json.loads((out / "model" / "intentbal.json").read_text())
    expected = Counter(i for _, i in toy_rows()) + Counter(i for _, i in known)
    assert meta["train_counts"] == dict(expected) and "oos" not in meta["train_counts"]
    assert seen_texts(meta["train_text_sha1"], [t for t, _ in known]) == [True] * len(known)  # evaluate flags them
    assert meta["logit_adjustment"] == {"tau": 1.25, "chosen_on": "validation"}
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["train_rows"] == ROWS + len(known) and metrics["train_samples"] == EPOCHS * (ROWS + len(known))
    assert all(h["validation_macro_recall"] is None for h in metrics["history"]), "nothing to validate on"
    refit = json.loads((out / "report.json").read_text())["summary"]["refit"]
    assert refit["rows"] == ROWS + len(known) and refit["validation_rows"] == len(known)
    note = (f"the shipped model was then refit on all {ROWS + len(known)} labelled rows "
            "(3 of them from the validation file)")
    assert note in (out / "report.md").read_text() and note in capsys.readouterr().out
    # the same data with refit=train: the shipped model never sees the validation file
    other = tmp_path / "train-only"
    overrides = recipe(fast_overrides, "data.oos_label=oos", "train.refit=train")
    assert run_cli("train", *args, "--output", other, *[x for o in overrides for x in ("--set", o)]) == 0
    assert json.loads((other / "model" / "intentbal.json").read_text())["train_counts"] == dict(Counter(
        i for _, i in toy_rows()))
    # the validation file scored as eval data too: eval rows are never trained on, so nothing to refit on
    scored = tmp_path / "scored"
    overrides = recipe(fast_overrides, "data.oos_label=oos")
    assert run_cli("train", *args, "--eval", tmp_path / "val.csv", "--output", scored,
                   *[x for o in overrides for x in ("--set", o)]) == 0
    assert json.loads((scored / "train_metrics.json").read_text())["refit"] is False


def test_refit_reads_the_old_switch():
    from intentbal.config import load_config

    assert load_config(overrides=["train.refit=true"]).train.refit == "all"
    assert load_config(overrides=["train.refit=false"]).train.refit == "off"
    assert load_config().train.refit == "all"


def test_a_crash_during_the_refit_keeps_the_evaluated_model(tmp_path, fast_overrides, monkeypatch):
    from intentbal.commands.train import checkpoint_dir, train_run
    from intentbal.config import load_config
    from intentbal.errors import IntentbalError
    from intentbal.training import soup

    data = write_csv(tmp_path / "train.csv", toy_rows())
    config = load_config(overrides=recipe(fast_overrides, "train.save_steps=2"),
                         values={"data.train": data, "output_dir": tmp_path / "crashed"})

    def crash(stage, done, total):
        if stage.endswith("(refit on all rows)") and done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(config, progress=crash)
    checkpoints = checkpoint_dir(config.output_dir)
    assert (checkpoints / "evaluated.safetensors").is_file() and (checkpoints / "refit" / "state.pt").is_file()
    assert not (checkpoints / "evaluated").exists() and not config.output_dir.exists()

    other = config.model_copy(update={"train": config.train.model_copy(update={"learning_rate": 1e-3})})
    with pytest.raises(IntentbalError, match="from a different run"):
        train_run(other, resume=True)

    fits = []
    real = soup.train_soup
    monkeypatch.setattr(soup, "train_soup", lambda data, **kw: fits.append(len(data)) or real(data, **kw))
    resumed = train_run(config, resume=True)
    assert fits == [ROWS], "only the refit is trained again"
    m = resumed.metrics.to_dict()
    assert m["resumed_from_step"] == 4 and m["evaluated_fit"]["resumed_from_step"] == m["evaluated_fit"]["steps"]
    assert not checkpoints.exists()

    straight = train_run(config.model_copy(update={"output_dir": tmp_path / "straight"}))
    for name in ("predictions.csv", "report.json"):
        assert (resumed.output_dir / name).read_bytes() == (straight.output_dir / name).read_bytes(), name
    records = [json.loads((run.output_dir / "model" / "intentbal.json").read_text()) for run in (resumed, straight)]
    for record in records:  # the two runs were written into folders of different names
        record["config"].pop("output_dir")
    assert records[0] == records[1]
    a, b = (weights_of(run.output_dir) for run in (resumed, straight))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_with_a_pool_the_refit_is_self_trained_by_a_teacher_refit_on_every_row(tmp_path, fast_overrides,
                                                                               monkeypatch):
    from intentbal.commands.train import train_run
    from intentbal.config import load_config
    from intentbal.training import soup

    pool = ["where is my parcel now", "money back please", "forgot the password", "stolen card", "track the box"]
    data = write_csv(tmp_path / "train.csv", toy_rows())
    unlabeled = write_csv(tmp_path / "pool.csv", [(t,) for t in pool], header=("text",))
    config = load_config(overrides=recipe(fast_overrides, "self_training.threshold=0", "self_training.alpha=0"),
                         values={"data.train": data, "data.unlabeled": unlabeled, "output_dir": tmp_path / "run"})
    fits = []
    real = soup.train_soup
    monkeypatch.setattr(soup, "train_soup", lambda data, **kw: fits.append(len(data)) or real(data, **kw))
    run = train_run(config)

    held = run.report.summary.refit.held_out_rows
    # the evaluated teacher and student, then the refit's own teacher on every row and its student
    assert fits == [ROWS - held, ROWS - held + len(pool), ROWS, ROWS + len(pool)]
    borrowed = [json.loads(line) for line in (run.output_dir / "pseudo_labels.jsonl").read_text().splitlines()]
    assert sorted(r["text"] for r in borrowed) == sorted(pool)
    meta = json.loads((run.output_dir / "model" / "intentbal.json").read_text())
    assert sum(meta["pseudo_counts"].values()) == sum(run.pseudo.values()) == len(pool)


def test_a_crash_in_the_refit_student_keeps_both_teachers(tmp_path, fast_overrides, monkeypatch):
    from intentbal.commands.train import checkpoint_dir, train_run
    from intentbal.config import load_config
    from intentbal.training import soup

    pool = ["where is my parcel now", "money back please", "forgot the password"]
    data = write_csv(tmp_path / "train.csv", toy_rows())
    unlabeled = write_csv(tmp_path / "pool.csv", [(t,) for t in pool], header=("text",))
    config = load_config(overrides=recipe(fast_overrides, "self_training.threshold=0", "self_training.alpha=0",
                                                 "train.save_steps=2"),
                         values={"data.train": data, "data.unlabeled": unlabeled, "output_dir": tmp_path / "run"})

    def crash(stage, done, total):
        if stage.endswith("(refit on all rows)") and "(teacher)" not in stage and done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(config, progress=crash)
    kept = checkpoint_dir(config.output_dir)
    for name in ("evaluated-teacher", "evaluated", "refit-teacher"):
        assert (kept / f"{name}.safetensors").is_file(), name
    fits = []
    real = soup.train_soup
    monkeypatch.setattr(soup, "train_soup", lambda data, **kw: fits.append(len(data)) or real(data, **kw))
    resumed = train_run(config, resume=True)
    assert fits == [ROWS + len(pool)], "only the refit's student is trained again"
    assert sum(resumed.pseudo.values()) == len(pool) and not kept.exists()
