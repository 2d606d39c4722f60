"""A careless user, a full disk and a killed process: every case ends in exit 2 and one line (or a
correct result), with nothing of the user's lost and nothing hidden left behind."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, TOY_EVAL, one_line_error, run_cli, set_args, toy_rows, write_csv


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: equal snapshots mean nothing was touched."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden(folder: Path) -> list[str]:
    """Hidden entries intentbal could have left in ``folder`` (partial writes, old outputs, locks)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and ".checkpoint" not in p.name)


def a_dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def run(trained_run: Path, tmp_path: Path) -> Path:
    """A copy of a finished train run, free to be changed."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


@pytest.fixture
def eval_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "eval.csv", TOY_EVAL)


# --- output folders, all the way down ------------------------------------------------------------------------


def test_a_users_file_deep_in_an_evaluate_output_is_kept(trained_run, eval_csv, tmp_path, capsys):
    out = tmp_path / "ev"
    assert run_cli("evaluate", "--model", trained_run / "model", "--data", eval_csv, "--output", out) == 0
    (out / "plots" / "NOTES.txt").write_text("mine")
    before = snapshot(out)
    assert run_cli("evaluate", "--model", trained_run / "model", "--data", eval_csv, "--output", out) == 2
    one_line_error(capsys, "plots/NOTES.txt", "nothing was deleted")
    assert snapshot(out) == before


def test_a_users_file_in_a_runs_model_folder_is_kept(run, tmp_path, fast_overrides, capsys):
    (run / "model" / "DEPLOY.md").write_text("how we ship it")
    before = snapshot(run)
    train = write_csv(tmp_path / "train.csv", toy_rows())
    assert run_cli("train", "--train", train, "--output", run, *set_args(fast_overrides)) == 2
    one_line_error(capsys, "model/DEPLOY.md")
    assert snapshot(run) == before


def test_an_export_in_a_runs_model_folder_is_intentbals_own(run):
    from intentbal.io.folders import check_output_dir

    (run / "model" / "model.onnx").write_bytes(b"graph")
    (run / "model" / "onnx.json").write_text("{}")
    check_output_dir(run, kind="train")  # a retrain replaces the export with the model it was made from


def test_a_linked_output_writes_the_links_target_and_keeps_the_link(trained_run, eval_csv, tmp_path):
    real = tmp_path / "reports" / "ev"
    assert run_cli("evaluate", "--model", trained_run / "model", "--data", eval_csv, "--output", real) == 0
    (real / "report.md").write_text("stale")
    link = tmp_path / "latest"
    link.symlink_to(real, target_is_directory=True)
    assert run_cli("evaluate", "--model", trained_run / "model", "--data", eval_csv, "--output", link) == 0
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert (real / "report.md").read_text() != "stale" and (real / "report.json").is_file()
    assert hidden(tmp_path) == [] and hidden(real.parent) == []


def test_a_linked_predict_output_keeps_the_link(trained_run, eval_csv, tmp_path):
    real = tmp_path / "p.csv"
    real.write_text("old\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    assert run_cli("predict", "--model", trained_run / "model", "--input", eval_csv, "--output", link,
                   "--overwrite") == 0
    assert link.is_symlink() and real.read_text().startswith("text,prediction")


def test_the_config_file_inside_the_output_is_refused(run, capsys):
    config = run / "config.yaml"
    before = snapshot(run)
    assert run_cli("train", "--config", config, "--output", run, "--set", "seed=7") == 2
    one_line_error(capsys, "config.yaml", "input")
    assert snapshot(run) == before


@pytest.mark.parametrize("key", ["data.unlabeled", "data.descriptions"])
def test_a_pool_or_descriptions_inside_the_output_are_refused(key, run, fast_overrides, capsys):
    inside = run / "augmentation.jsonl"  # written by the run, then given as an input of the next one
    train = write_csv(run.parent / "train.csv", toy_rows())
    before = snapshot(run)
    assert run_cli("train", "--train", train, "--output", run, *set_args([*fast_overrides, f"{key}={inside}"])) == 2
    one_line_error(capsys, "input", "augmentation.jsonl")
    assert snapshot(run) == before


HOLDER = """
import sys, time
from pathlib import Path
from intentbal.io.folders import output_folder
with output_folder(Path(sys.argv[1]), kind="train"):
    print("holding", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_is_refused_while_the_first_runs(tmp_path, fast_overrides, capsys):
    train = write_csv(tmp_path / "train.csv", toy_rows())
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        assert run_cli("train", "--train", train, "--output", out, *set_args(fast_overrides)) == 2
        one_line_error(capsys, f"locked by intentbal process {holder.pid}", "wait for that command to end")
        assert not out.exists()
    finally:
        holder.kill()  # SIGKILL: its lock stays behind, as after a crash
        holder.wait()
    assert (tmp_path / ".run.lock").exists()
    assert run_cli("train", "--train", train, "--output", out, *set_args(fast_overrides),
                   "--set", "evaluate.plots=false") == 0
    assert f"the lock of an interrupted intentbal command (process {holder.pid} is gone)" in capsys.readouterr().err
    assert (out / "model" / "model.safetensors").is_file() and hidden(tmp_path) == []


# --- recovery from interruption ------------------------------------------------------------------------------------


def test_an_earlier_output_hidden_by_a_kill_between_the_renames_is_restored(trained_run, eval_csv, tmp_path, capsys):
    out = tmp_path / "ev"
    assert run_cli("evaluate", "--model", trained_run / "model", "--data", eval_csv, "--output", out) == 0
    kept = snapshot(out)
    out.rename(tmp_path / f".ev.old-{a_dead_pid()}")  # killed after the first rename, before the second
    assert run_cli("evaluate", "--model", trained_run / "model", "--data", eval_csv, "--output", out,
                   "--set", "evaluate.plots=false") == 0
    assert "restored" in capsys.readouterr().err
    assert (out / "report.json").is_file() and hidden(tmp_path) == []
    assert set(snapshot(out)) < set(kept)  # the restored run was replaced by the new one, without plots


def test_an_old_output_left_after_a_completed_swap_is_removed(trained_run, eval_csv, tmp_path, capsys):
    out = tmp_path / "ev"
    assert run_cli("evaluate", "--model", trained_run / "model", "--data", eval_csv, "--output", out) == 0
    shutil.copytree(out, tmp_path / f".ev.old-{a_dead_pid()}")  # killed before the old one was deleted
    assert run_cli("evaluate", "--model", trained_run / "model", "--data", eval_csv, "--output", out) == 0
    err = capsys.readouterr().err
    assert "removed" in err and ".ev.old-" in err
    assert hidden(tmp_path) == []


@pytest.mark.parametrize("leftover", [".p.csv.partial-{pid}-x1y2", ".p.csv.lock"])
def test_predict_mends_what_a_killed_predict_left(leftover, trained_run, eval_csv, tmp_path, capsys):
    pid = a_dead_pid()
    path = tmp_path / leftover.format(pid=pid)
    path.write_text(json.dumps({"pid": pid, "host": os.uname().nodename}) if path.suffix == ".lock" else "half")
    assert run_cli("predict", "--model", trained_run / "model", "--input", eval_csv,
                   "--output", tmp_path / "p.csv") == 0
    assert "removed" in capsys.readouterr().err
    assert hidden(tmp_path) == [] and (tmp_path / "p.csv").is_file()


def test_a_partial_run_of_a_killed_train_is_removed(tmp_path, fast_overrides, capsys):
    partial = tmp_path / f".run.partial-{a_dead_pid()}-abc"
    (partial / "model").mkdir(parents=True)
    (partial / "model" / "model.safetensors").write_bytes(b"\0" * 1000)
    train = write_csv(tmp_path / "train.csv", toy_rows())
    assert run_cli("train", "--train", train, "--output", tmp_path / "run", *set_args(fast_overrides),
                   "--set", "evaluate.plots=false") == 0
    assert "unfinished output of an interrupted command" in capsys.readouterr().err
    assert hidden(tmp_path) == []


@pytest.mark.slow  # a training process
def test_sigterm_leaves_nothing_and_exits_143(tmp_path, tiny_model):
    train = write_csv(tmp_path / "train.csv", toy_rows())
    args = [sys.executable, "-m", "intentbal", "train", "--train", str(train), "--output", str(tmp_path / "run"),
            *set_args([f"model.name_or_path={tiny_model}", "train.epochs=1000", "train.batch_size=4",
                       "data.validation_fraction=0", "train.save_steps=0"])]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / ".run.lock").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(2)  # into the training
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143, err
    assert err.splitlines()[-1] == "intentbal: terminated (SIGTERM); no output was left half-written"
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.csv"]


# --- training that goes wrong stops ----------------------------------------------------------------------------


def test_a_diverged_training_stops_with_one_line_and_writes_nothing(tmp_path, fast_overrides, capsys):
    train = write_csv(tmp_path / "train.csv", toy_rows())
    sets = set_args([*fast_overrides, "train.learning_rate=1e30", "train.save_steps=2"])
    assert run_cli("train", "--train", train, "--output", tmp_path / "run", *sets) == 2
    one_line_error(capsys, "training diverged", "train.learning_rate", "nothing was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.csv"]  # no run, no checkpoint


def test_a_model_with_non_finite_weights_is_never_saved(trained_run, tmp_path):
    import torch

    from intentbal.errors import TrainingDiverged
    from intentbal.inference.classifier import IntentClassifier

    clf = IntentClassifier.load(trained_run / "model")
    with torch.no_grad():
        next(clf.model.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(TrainingDiverged, match="nan or inf"):
        clf.save(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()


# --- every setting checked where it is read --------------------------------------------------------------------


@pytest.mark.parametrize(("sets", "fragments"), [
    (["train.epochs=.inf"], ("train.epochs",)),
    (["train.learning_rate=.nan"], ("train.learning_rate",)),
    (["seed=18446744073709551616"], ("seed", "4294967296")),
    (["seed=-1"], ("seed",)),
    (["data.text_column=intent"], ("data.text_column", "data.intent_column", "two different columns")),
    (["model.max_length=1000"], ("model.max_length 1000", "128 positions", "model.max_length=128")),
])
def test_settings_out_of_bounds_are_one_line_before_training(sets, fragments, tmp_path, fast_overrides, capsys,
                                                              monkeypatch):
    import intentbal.training.loop

    def never(*args, **kwargs):
        raise AssertionError("refused before any training")

    monkeypatch.setattr(intentbal.training.loop, "make_optimiser", never)
    train = write_csv(tmp_path / "train.csv", toy_rows())
    assert run_cli("train", "--train", train, "--output", tmp_path / "run", *set_args([*fast_overrides, *sets])) == 2
    one_line_error(capsys, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.csv"]


@pytest.mark.parametrize("args", [["--repeats", "0"], ["--folds", "1"]])
def test_cv_needs_a_repeat_and_two_folds(args, tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", toy_rows())
    assert run_cli("cv", "--train", train, "--output", tmp_path / "cv", *args) == 2
    one_line_error(capsys, "expected at least 2 folds and 1 repeat")


@pytest.mark.parametrize(("name", "content"), [
    ("dup.csv", "text,intent,intent\nhi,greet,x\nbye,leave,y\n"),
    ("dup.jsonl", '{"text": "hi", "intent": "greet", "intent": "x"}\n'),
])
def test_a_column_named_twice_is_refused(name, content, tmp_path, capsys):
    path = tmp_path / name
    path.write_text(content)
    assert run_cli("profile", path, "--output", tmp_path / "p.json") == 2
    one_line_error(capsys, name, "'intent' twice")


# --- damaged files ---------------------------------------------------------------------------------------------


def test_truncated_weights_are_one_line_naming_the_model(run, eval_csv, tmp_path, capsys):
    weights = run / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    for command in (["predict", "--input", eval_csv, "--output", tmp_path / "p.csv"],
                    ["evaluate", "--data", eval_csv, "--output", tmp_path / "ev"]):
        assert run_cli(command[0], "--model", run / "model", *command[1:]) == 2
        one_line_error(capsys, str(run / "model"), "damaged")
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "ev").exists()


@pytest.mark.parametrize("content", ['{"max_length": 32, ', "[1, 2]", '{"max_length": "long"}',
                                     '{"max_length": 100000}'])
def test_a_broken_intentbal_json_is_one_line(content, run, eval_csv, tmp_path, capsys):
    (run / "model" / "intentbal.json").write_text(content)
    assert run_cli("predict", "--model", run / "model", "--input", eval_csv, "--output", tmp_path / "p.csv") == 2
    one_line_error(capsys, "intentbal.json")


def test_a_deleted_intentbal_json_is_said(run, eval_csv, tmp_path, capsys):
    (run / "model" / "intentbal.json").unlink()
    assert run_cli("predict", "--model", run / "model", "--input", eval_csv, "--output", tmp_path / "p.csv") == 0
    err = capsys.readouterr().err
    assert "no intentbal.json" in err and "fallback threshold" in err and "max length" in err


def test_a_compressed_file_under_a_csv_name_is_one_line(tmp_path, capsys):
    path = tmp_path / "train.csv"
    path.write_bytes(gzip.compress(b"text,intent\nhi,greet\n"))
    assert run_cli("profile", path, "--output", tmp_path / "p.json") == 2
    one_line_error(capsys, "train.csv", "gzip-compressed", "gunzip")


@pytest.mark.slow  # trains until a checkpoint, then resumes
def test_a_corrupt_checkpoint_is_one_line(tmp_path, tiny_model, capsys):
    train = write_csv(tmp_path / "train.csv", toy_rows())
    args = ["train", "--train", train, "--output", tmp_path / "run",
            *set_args([f"model.name_or_path={tiny_model}", "train.epochs=6", "train.batch_size=4",
                       "train.save_steps=5", "data.validation_fraction=0", "evaluate.plots=false"])]
    import intentbal.commands.train as job

    real = job._write_run

    def crash(*a, **k):
        raise KeyboardInterrupt  # after training, before writing: the checkpoint stays

    job._write_run = crash
    try:
        assert run_cli(*args) == 130
    finally:
        job._write_run = real
    checkpoint = tmp_path / ".run.checkpoint"
    states = list(checkpoint.rglob("state.pt"))
    if not states:  # a finished fit is kept whole instead
        states = list(checkpoint.rglob("*.safetensors"))
    assert states
    for state in states:
        state.write_bytes(b"garbage")
    capsys.readouterr()
    assert run_cli(*args, "--resume") == 2
    one_line_error(capsys, "checkpoint", "damaged", "without --resume")


# --- resume says what it does -----------------------------------------------------------------------------------


def test_resume_without_a_checkpoint_says_so(tmp_path, fast_overrides, capsys):
    train = write_csv(tmp_path / "train.csv", toy_rows())
    assert run_cli("train", "--train", train, "--output", tmp_path / "run", *set_args(fast_overrides),
                   "--set", "evaluate.plots=false", "--resume") == 0
    assert "found no checkpoint" in capsys.readouterr().err


def test_a_rerun_without_resume_never_discards_a_checkpoint(tmp_path, fast_overrides, capsys):
    train = write_csv(tmp_path / "train.csv", toy_rows())
    checkpoint = tmp_path / ".run.checkpoint" / "evaluated"
    checkpoint.mkdir(parents=True)
    (checkpoint / "state.pt").write_bytes(b"x")
    assert run_cli("train", "--train", train, "--output", tmp_path / "run", *set_args(fast_overrides)) == 2
    one_line_error(capsys, "checkpoint of an interrupted one", "--resume", "delete that folder")
    assert (checkpoint / "state.pt").read_bytes() == b"x" and not (tmp_path / "run").exists()


# --- bounded memory for huge texts ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["long.csv", "long.jsonl", "long.txt"])
def test_a_text_past_the_limit_is_the_same_line_in_every_format(name, tmp_path, capsys):
    from intentbal.data.readers import MAX_TEXT_CHARS

    text = "a" * (MAX_TEXT_CHARS + 1)
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text(f"text,intent\nhi,greet\n{text},greet\n")
    elif name.endswith(".jsonl"):
        path.write_text(json.dumps({"text": "hi", "intent": "greet"}) + "\n" + json.dumps({"text": text}) + "\n")
    else:
        path.write_text(f"hi\n{text}\n")
    from intentbal.data.readers import load_intents
    from intentbal.errors import IntentbalError

    with pytest.raises(IntentbalError) as info:
        load_intents(path, require_intent=False)
    message = str(info.value)
    assert f"{name}:" in message and "at most 131,072 characters" in message


def test_a_huge_text_is_cut_before_it_is_tokenized(tiny_model):
    from transformers import AutoTokenizer

    from intentbal.model.encoding import CHARS_PER_TOKEN, encode

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    seen: list[int] = []

    def spy(texts, **kwargs):
        seen.extend(len(t) for t in texts)
        return tokenizer(texts, **kwargs)

    ids, cut = encode(spy, ["where is my parcel " * 5000, "refund"], 16)  # a text of 95,000 characters
    assert cut == 1 and [len(i) for i in ids] == [16, 3]
    assert max(seen) <= 16 * CHARS_PER_TOKEN


# --- the Rasa round trip --------------------------------------------------------------------------------------

NLU = """version: "3.1"
nlu:
- intent: book_flight
  examples: |
    - fly me to [Berlin](city)
    - book a flight to [Paris]{"entity": "city", "role": "destination"}
    - i need a plane ticket
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
    - hey
    - hello there friend
- synonym: Paris
  examples: |
    - paname
- regex: zipcode
  examples: |
    - [0-9]{5}
- lookup: city
  examples: |
    - Berlin
    - Paris
"""


def test_augment_to_rasa_keeps_entities_and_every_other_section(tmp_path):
    import yaml

    from intentbal.data.rasa import ENTITY, plain
    from intentbal.data.readers import load_intents

    source = tmp_path / "nlu.yml"
    source.write_text(NLU)
    out = tmp_path / "out.yml"
    assert run_cli("augment", source, "--output", out, "--set", "augment.target_count=8",
                   "--set", "augment.augmenters=[keyboard,word_swap,word_delete]") == 0
    before, after = yaml.safe_load(NLU), yaml.safe_load(out.read_text())
    assert after["version"] == "3.1"
    assert [i for i in after["nlu"] if "intent" not in i] == [i for i in before["nlu"] if "intent" not in i]
    flight = next(i for i in after["nlu"] if i.get("intent") == "book_flight")["examples"]
    texts = [e["text"] for e in flight]
    assert texts[:3] == ["fly me to [Berlin](city)",
                         'book a flight to [Paris]{"entity": "city", "role": "destination"}', "i need a plane ticket"]
    synthetic = [e for e in flight if "metadata" in e]
    assert len(flight) == 8 and len(synthetic) == 5
    for example in synthetic:  # an annotated source's copy keeps the same entities
        source_text = example["metadata"]["source_text"]
        raw = next(t for t in texts[:3] if plain(t) == source_text)
        assert [m["annotation"] for m in ENTITY.finditer(example["text"])] == \
            [m["annotation"] for m in ENTITY.finditer(raw)]
    back = load_intents(out)
    assert back.texts.count("fly me to Berlin") == 1 and "book_flight" in back.intents


# --- a real full disk --------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 160 KiB tmpfs: room for the data and a lock, not for a model (skipped where it cannot be mounted)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(disk)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("a tmpfs cannot be mounted here (needs root)")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_a_full_disk_during_train_is_one_line_and_leaves_nothing(small_disk, fast_overrides, capsys):
    train = write_csv(small_disk / "train.csv", toy_rows())
    assert run_cli("train", "--train", train, "--output", small_disk / "run", *set_args(fast_overrides)) == 2
    one_line_error(capsys, "could not write the output", "free disk space")
    assert sorted(p.name for p in small_disk.iterdir()) == ["train.csv"]


def test_a_full_disk_during_predict_is_one_line_and_leaves_nothing(small_disk, trained_run, capsys):
    texts = write_csv(small_disk / "t.csv", [(f"where is my parcel number {i} " * 20,) for i in range(180)],
                      header=("text",))
    assert run_cli("predict", "--model", trained_run / "model", "--input", texts,
                   "--output", small_disk / "p.csv") == 2
    one_line_error(capsys, "could not write the output", "free disk space")
    assert sorted(p.name for p in small_disk.iterdir()) == ["t.csv"]
