"""What the commands say while they work: phase and epoch lines off a terminal, bars on one,
nothing from the library itself but log records."""

from __future__ import annotations

import json
import logging
import re

import pytest

from intentbal.training.plan import native_bf16

from conftest import run_cli, set_args, write_csv


@pytest.fixture
def eval_csv(tmp_path):
    return write_csv(tmp_path / "eval.csv", [("where is my parcel now", "track_order"), ("refund me please", "refund"),
                                             ("stolen card", "fraud")])


def test_train_off_a_terminal_logs_its_phases_and_one_line_per_epoch(tmp_path, toy_csv, eval_csv, fast_overrides,
                                                                      capsys):
    validation = write_csv(tmp_path / "validation.csv", [("where is my parcel", "track_order"),
                                                         ("refund my money", "refund")])
    assert run_cli("train", "--train", toy_csv, "--validation", validation, "--eval", eval_csv,
                   "--output", tmp_path / "run", *set_args(fast_overrides), "--set", "train.epochs=3") == 0
    out, err = capsys.readouterr()  # not a terminal: plain lines, no bars
    assert "\r" not in err
    assert re.search(r"^profile: \d+ training rows of 4 intents; 2 validation rows, 3 eval rows$", err, re.M), err
    assert re.search(r"^the model reported on: trains on \d+ labelled rows \+ \d+ augmented.*, 4 intents$", err, re.M)
    # the model reported on, measured on the validation rows; then the refit, which trains on them
    line = r"^epoch (\d)/3: loss [\d.]+, {}[\d.]+ samples/s, \d+ s elapsed$"
    assert re.findall(line.format(r"validation macro recall [\d.]+, "), err, re.M) == ["1", "2", "3"], err
    assert re.findall(line.format(""), err, re.M) == ["1", "2", "3"], err
    assert re.search(r"^refit: the shipped model trains on all \d+ labelled rows \(2 more", err, re.M), err
    assert re.search(r"^the shipped refit: trained in \d+ s; logit adjustment tau", err, re.M), err
    assert "scoring the model reported on, on 3 eval rows" in err
    assert f"writing {tmp_path / 'run'}" in err

    # every count names its model, and the terminal, intentbal.json and the card agree
    reported = re.search(r"^the model reported on trained on (\d+) labelled rows \+ (\d+) augmented", out, re.M)
    shipped = re.search(r"^the shipped model \(refit\) trained on (\d+) labelled rows \+ (\d+) augmented", out, re.M)
    assert reported and shipped, out
    assert int(shipped[1]) == int(reported[1]) + 2  # the validation rows
    record = json.loads((tmp_path / "run" / "model" / "intentbal.json").read_text())
    assert sum(record["train_counts"].values()) == int(shipped[1])
    assert sum(record["augmented_counts"].values()) == int(shipped[1]) + int(shipped[2])
    card = (tmp_path / "run" / "model" / "README.md").read_text()
    assert f"This model trained on {shipped[1]} examples of 4 intents" in card
    assert f"Augmentation added {shipped[2]} rows" in card and "It is a refit on every labelled row" in card
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert sum(r["train_count"] for r in report["intents"]) == int(reported[1])


def test_quiet_leaves_only_warnings_and_verbose_keeps_the_lines(tmp_path, toy_csv, fast_overrides, capsys):
    assert run_cli("train", "--quiet", "--train", toy_csv, "--output", tmp_path / "quiet",
                   *set_args(fast_overrides), "--set", "train.epochs=1") == 0
    out = capsys.readouterr()
    assert "epoch 1/1" not in out.err and "profile:" not in out.err
    assert f"wrote {tmp_path / 'quiet'}" in out.out  # the result is still printed
    run = tmp_path / "quiet"
    assert run_cli("train", "--verbose", "--train", toy_csv, "--output", tmp_path / "loud", *set_args(fast_overrides),
                   "--set", "train.epochs=1", "--set", "train.trainable_layers=1") == 0
    err = capsys.readouterr().err
    assert "settings other than the defaults: {" in err and "'epochs': 1" in err
    assert "row transform augmentation: 16 rows in, " in err  # the model reported on: 21 rows less 5 held out
    precision = "bf16" if native_bf16("cpu") else "fp32"  # train.precision auto: bf16 where the CPU has it
    assert f"training plan: eager loop, forward logits, {precision}, CUDA graphs off, 1 process(es), row weights on, " \
           "top 1 layers trained, the lower ones cached" in err  # description rows weigh less than labelled ones
    assert "epoch 1/1" in err
    assert run_cli("predict", "--verbose", "--model", run / "model", "--input", toy_csv,
                   "--output", tmp_path / "p.csv") == 0
    err = capsys.readouterr().err
    assert f"loaded {run / 'model'}: 4 intents" in err and "predicting" in err


@pytest.fixture
def transformers_bars_on(monkeypatch):
    """transformers' and huggingface_hub's progress bars on, as in a user's notebook (the suite turns them off)."""
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as hf_logging

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    hf_logging.enable_progress_bar()
    enable_progress_bars()
    yield
    hf_logging.disable_progress_bar()
    disable_progress_bars()


def test_the_library_logs_and_never_prints(tmp_path, toy_csv, fast_overrides, capsys, caplog, transformers_bars_on):
    from intentbal.commands.train import train_run
    from intentbal.config import load_config
    from intentbal.inference.classifier import IntentClassifier

    config = load_config(None, overrides=[*fast_overrides, "train.epochs=2"],
                         values={"data.train": str(toy_csv), "output_dir": str(tmp_path / "run")})
    with caplog.at_level(logging.INFO, logger="intentbal"):
        train_run(config)
        IntentClassifier.load(tmp_path / "run" / "model").save(tmp_path / "again")
    out = capsys.readouterr()
    assert out.out == ""
    assert "epoch" not in out.err and "profile" not in out.err
    # transformers' own bars ("Loading weights", "Writing model shards") stay quiet inside the library
    assert "Loading weights" not in out.err and "Writing model" not in out.err and "it/s" not in out.err, out.err
    assert [r.message.split(":")[0] for r in caplog.records if r.name == "intentbal.training.loop"][-2:] == \
        ["epoch 1/2", "epoch 2/2"]


def test_progress_off_a_terminal_is_a_plain_line_every_half_minute(monkeypatch, caplog):
    import time

    from intentbal import cli

    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    bars = cli._Bars()
    bars.plain = True
    with caplog.at_level(logging.INFO, logger="intentbal"):
        bars("predict", 0, 400)
        clock[0] += 10
        bars("predict", 100, 400)  # too soon for a line
        clock[0] += 25
        bars("predict", 200, 400)
        clock[0] += 5
        bars("predict", 400, 400)  # the end of a stage that spoke
        bars("profile", 1, 1)  # a quick stage says nothing
    assert [r.getMessage() for r in caplog.records] == ["predict: 200/400 texts (50%)", "predict: 400/400 texts (100%)"]
