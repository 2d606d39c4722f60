"""Bad input, crashes, resume, determinism and safety: what intentbal guarantees."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intentbal.data.readers import load_intents
from intentbal.errors import IntentbalError

from conftest import ROOT, TOY_EVAL, one_line_error, run_cli, set_args, toy_data, toy_rows, write_csv

GOOD = "text,intent\nhello there,greet\nbye now,leave\n"


# --- every bad input: one line, exit 2, nothing written ----------------------------------------

BAD_FILES = {
    "missing": (None, "file not found"),
    "empty": (b"", "the file is empty"),
    "header_only": (b"text,intent\n", "header only"),
    "no_text_column": (b"utterance,intent\nhi,greet\n", "expected a text column 'text'"),
    "no_intent_column": (b"text,goal\nhi,greet\n", "expected an intent column 'intent'"),
    "empty_text": (b"text,intent\nhi,greet\n,greet\n", ":3: expected a non-empty text"),
    "blank_text": (b"text,intent\nhi,greet\n   \t,greet\n", ":3: expected a non-empty text"),
    "empty_intent": (b"text,intent\nhi,\n", ":2: expected an intent"),
    "too_many_fields": (b"text,intent\nhi,greet,x\n", ":2: expected 2 fields as in the header, found 3"),
    "too_few_fields": (b"text,intent\nhi\n", ":2: expected 2 fields as in the header, found 1"),
    "unterminated_quote": (b'text,intent\n"hi,greet\n', "malformed CSV"),
    "not_utf8": ("text,intent\ncaf\xe9,order\n".encode("cp1252"), ":2: not valid UTF-8"),
    "nul_bytes": (b"text,intent\nhi\x00,greet\n", ":2: found a NUL byte"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_csv_files(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    content, fragment = BAD_FILES[case]
    path = tmp_path / f"{case}.csv"
    if content is not None:
        path.write_bytes(content)
    assert run_cli("train", "--train", path, "--output", tmp_path / "out") == 2
    one_line_error(capsys, f"{case}.csv", fragment)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.parametrize("name, content, fragment", [
    ("bad.json", '{"train": [["hi", "greet"]', "malformed JSON"),
    ("bad.jsonl", '{"text": "hi", "intent": "greet"}\n{"text": \n', "bad.jsonl:2: malformed JSON"),
    ("bad.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n  - : [\n", "bad.yml:5:3: YAML syntax error"),
    ("noex.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n- intent: lonely\n", "'lonely' has no examples"),
])
def test_bad_structured_files(name, content, fragment, tmp_path, capsys):
    path = tmp_path / name
    path.write_text(content)
    assert run_cli("profile", path, "--output", tmp_path / "p.json") == 2
    one_line_error(capsys, name, fragment)
    assert not (tmp_path / "p.json").exists()


def test_folder_where_a_file_is_expected(tmp_path, capsys):
    assert run_cli("profile", tmp_path, "--output", tmp_path / "p.json") == 2
    one_line_error(capsys, str(tmp_path), "found a folder")


def test_single_intent_in_training(tmp_path, capsys, fast_overrides):
    path = write_csv(tmp_path / "one.csv", [("a b", "only"), ("c d", "only"), ("e f", "only")])
    sets = set_args(fast_overrides)
    assert run_cli("train", "--train", path, "--output", tmp_path / "out", *sets) == 2
    one_line_error(capsys, "one.csv", "expected at least 2 intents", "found 1")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("override, fragment", [
    ("train.colour=red", "unknown key 'train.colour'"),
    ("train.batch_size=many", "train.batch_size"),
    ("train.batch_size=-4", "train.batch_size"),
    ("augment.target_count=0", "augment.target_count"),
    ("train.epochs=0", "train.epochs"),
    ("train.weighting=focal", "train.weighting"),
    ("augment.augmenters=[typo]", "augment.augmenters"),
])
def test_bad_config_values(override, fragment, tmp_path, capsys, toy_csv):
    assert run_cli("train", "--train", toy_csv, "--output", tmp_path / "out", "--set", override) == 2
    one_line_error(capsys, fragment)
    assert not (tmp_path / "out").exists()


def test_bad_config_file(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  epochs: [1, 2\n")
    assert run_cli("train", "--config", cfg) == 2
    one_line_error(capsys, "c.yaml:3:1: YAML syntax error")


def test_bad_model_paths(tmp_path, capsys, toy_csv):
    assert run_cli("evaluate", "--model", tmp_path / "nope", "--data", toy_csv, "--output", tmp_path / "ev") == 2
    one_line_error(capsys, "nope", "expected a Hugging Face model folder", "found nothing")
    (tmp_path / "notmodel").mkdir()
    (tmp_path / "notmodel" / "readme.txt").write_text("hi")
    assert run_cli("predict", "--model", tmp_path / "notmodel", "--input", toy_csv, "--output", tmp_path / "p.csv") == 2
    one_line_error(capsys, "notmodel", "no config.json")
    assert not (tmp_path / "ev").exists() and not (tmp_path / "p.csv").exists()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("trained") / "run"
    train = write_csv(out.parent / "train.csv", toy_rows())
    sets = set_args([f"model.name_or_path={tiny_model}", "train.epochs=3", "train.batch_size=8"])
    assert run_cli("train", "--train", train, "--output", out, *sets) == 0
    return out


def test_model_whose_labels_do_not_match_the_data(tmp_path, capsys, trained_run):
    other = write_csv(tmp_path / "other.csv", [("play some jazz", "play_music"), ("weather today", "weather")])
    assert run_cli("evaluate", "--model", trained_run / "model", "--data", other, "--output", tmp_path / "ev") == 2
    one_line_error(capsys, "share none with", "play_music")
    assert not (tmp_path / "ev").exists()


def test_unseen_eval_intent_is_evaluated_not_an_error(tmp_path, capsys, trained_run):
    data = write_csv(tmp_path / "e.csv", [("where is my parcel", "track_order"), ("play jazz", "play_music")])
    assert run_cli("evaluate", "--model", trained_run / "model", "--data", data, "--output", tmp_path / "ev") == 0
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["summary"]["unseen_in_train"] == ["play_music"]


@pytest.mark.slow  # trains through the CLI
def test_hard_texts_train_and_long_ones_are_counted(tmp_path, capsys, fast_overrides):
    rows = toy_rows() + [
        ("مرحبا أين طلبي من فضلك", "track_order"), ("שלום איפה ההזמנה", "track_order"),
        ("refund 💸💸 now 🙏", "refund"), ("bell\x07 and\ttab refund", "refund"),
        (" ".join(["password"] * 300), "password"),
    ]
    data = write_csv(tmp_path / "hard.csv", rows)
    sets = set_args(fast_overrides)
    assert run_cli("train", "--train", data, "--eval", data, "--output", tmp_path / "out", *sets) == 0
    out = capsys.readouterr().out
    assert "warning: 1 training text(s) longer than 32 tokens were truncated" in out
    assert "warning: 1 eval text(s) longer than 32 tokens were truncated" in out
    with open(tmp_path / "out" / "predictions.csv", encoding="utf-8") as f:
        assert "💸" in f.read()


# --- writing fails cleanly ---------------------------------------------------------------------

@pytest.mark.slow  # trains through the CLI
def test_disk_full_is_a_clear_error_and_leaves_nothing(tmp_path, capsys, fast_overrides, toy_csv, monkeypatch):
    import intentbal.io.atomic as outputs

    real_fdopen = os.fdopen

    def full(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)

        def write(_):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        f.write = write
        return f

    monkeypatch.setattr(outputs.os, "fdopen", full)
    sets = set_args(fast_overrides)
    assert run_cli("train", "--train", toy_csv, "--output", tmp_path / "out", *sets) == 2
    err = one_line_error(capsys, "No space left on device", "free disk space")
    assert str(tmp_path / "out") in err and ".partial" not in err and ".lock" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.csv"]


def test_output_never_replaces_a_folder_of_other_files(tmp_path, capsys, toy_csv, fast_overrides, monkeypatch):
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    (tmp_path / "afile").write_text("x")
    sets = set_args(fast_overrides)
    import intentbal.training.loop

    def never(*args, **kwargs):
        raise AssertionError("the output folder is checked before any training")

    monkeypatch.setattr(intentbal.training.loop, "fine_tune", never)
    assert run_cli("train", "--train", toy_csv, "--output", precious, *sets) == 2
    one_line_error(capsys, "found a folder of other files", "nothing was deleted")
    assert (precious / "thesis.txt").read_text() == "years of work"
    assert run_cli("train", "--train", toy_csv, "--output", tmp_path / "afile", *sets) == 2
    one_line_error(capsys, "found a file")
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.slow  # trains twice through the CLI
def test_rerun_replaces_an_earlier_run(tmp_path, toy_csv, fast_overrides):
    sets = set_args(fast_overrides)
    out = tmp_path / "run"
    assert run_cli("train", "--train", toy_csv, "--output", out, *sets) == 0
    (out / "stale.txt").write_text("from the first run")  # as if the first run had written it:
    marker = json.loads((out / "intentbal-output.json").read_text())
    (out / "intentbal-output.json").write_text(json.dumps({**marker, "entries": [*marker["entries"], "stale.txt"]}))
    assert run_cli("train", "--train", toy_csv, "--output", out, *sets, "--set", "seed=1") == 0
    assert not (out / "stale.txt").exists() and (out / "manifest.json").exists()
    assert json.loads((out / "manifest.json").read_text())["seed"] == 1


def test_unwritable_output_is_a_clear_error(tmp_path, capsys, toy_csv):
    target = Path("/proc/intentbal-cannot-write/p.json")
    assert run_cli("profile", toy_csv, "--output", target) == 2
    one_line_error(capsys, "could not write the output")


# --- kill -9, then --resume ----------------------------------------------------------------------

def run_args(train: Path, evalset: Path, out: Path, tiny_model: Path) -> list[str]:
    return [sys.executable, "-m", "intentbal.cli", "train", "--train", str(train), "--eval", str(evalset),
            "--output", str(out), "--set", f"model.name_or_path={tiny_model}", "--set", "train.epochs=60",
            "--set", "train.batch_size=4", "--set", "train.save_steps=40", "--set", "augment.target_count=6"]


@pytest.mark.slow  # three training processes of 120 epochs
def test_kill_and_resume_gives_identical_predictions(tmp_path, tiny_model):
    train = write_csv(tmp_path / "train.csv", toy_rows())
    evalset = write_csv(tmp_path / "eval.csv", TOY_EVAL)
    env = {**os.environ, "PYTHONHASHSEED": "1"}
    killed_out = tmp_path / "killed"
    proc = subprocess.Popen(run_args(train, evalset, killed_out, tiny_model), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # the validation rows are held out of train, so the shipped model is refit: kill the evaluated model's fit
    state = tmp_path / ".killed.checkpoint" / "evaluated" / "state.pt"
    deadline = time.time() + 240
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists(), "a checkpoint was written before the kill"
    assert not killed_out.exists(), "a killed run leaves no output folder"

    resumed = subprocess.run(run_args(train, evalset, killed_out, tiny_model) + ["--resume"], cwd=ROOT,
                             env={**env, "PYTHONHASHSEED": "2"}, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from the checkpoint at step" in resumed.stdout
    assert not state.parent.parent.exists(), "a finished run removes its checkpoints"
    metrics = json.loads((killed_out / "train_metrics.json").read_text())
    assert metrics["refit"] and metrics["evaluated_fit"]["resumed_from_step"] > 0

    straight = subprocess.run(run_args(train, evalset, tmp_path / "straight", tiny_model), cwd=ROOT,
                              env={**env, "PYTHONHASHSEED": "3"}, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr[-2000:]
    for name in ("predictions.csv", "augmentation.jsonl", "report.json", "model/model.safetensors"):
        assert (killed_out / name).read_bytes() == (tmp_path / "straight" / name).read_bytes(), name


@pytest.mark.slow  # trains, then resumes
def test_resume_with_other_settings_is_refused(tmp_path, tiny_model, capsys):
    from intentbal.config import ModelConfig, TrainConfig
    from intentbal.training.loop import fine_tune

    data = toy_data()
    model = ModelConfig(name_or_path=str(tiny_model), max_length=32)
    folder = tmp_path / "ckpt"
    fine_tune(data, model_config=model, train_config=TrainConfig(epochs=4, batch_size=4, save_steps=3),
              seed=0, checkpoint_dir=folder)
    assert (folder / "state.pt").exists() and (folder / "model.safetensors").exists()
    with pytest.raises(IntentbalError, match="from a different run"):
        fine_tune(data, model_config=model, train_config=TrainConfig(epochs=4, batch_size=4, learning_rate=1e-3),
                  seed=0, checkpoint_dir=folder, resume=True)


def test_stale_partial_folders_of_dead_processes_are_cleaned(tmp_path):
    from intentbal.io.folders import atomic_dir

    stale = tmp_path / ".out.partial-999999999-abc"
    stale.mkdir()
    with atomic_dir(tmp_path / "out", kind="evaluate") as tmp:
        (tmp / "f").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- manifest ----------------------------------------------------------------------------------

def test_manifest_records_versions_config_data_and_seed(trained_run):
    import hashlib

    manifest = json.loads((trained_run / "manifest.json").read_text())
    assert manifest["seed"] == 0
    for package in ("intentbal", "torch", "transformers", "nlpaug"):
        assert manifest["versions"][package]
    train = Path(manifest["data"]["train"]["path"])
    assert manifest["data"]["train"]["sha256"] == hashlib.sha256(train.read_bytes()).hexdigest()
    assert manifest["config"]["train"]["epochs"] == 3


# --- loaders never crash -------------------------------------------------------------------------

SUFFIXES = [".csv", ".tsv", ".jsonl", ".json", ".yml"]


def load_or_clear_error(path: Path) -> None:
    try:
        data = load_intents(path)
    except IntentbalError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    assert len(data.texts) == len(data.intents) > 0
    assert all(t.strip() for t in data.texts) and all(i.strip() for i in data.intents)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300), suffix=st.sampled_from(SUFFIXES))
def test_arbitrary_bytes_load_or_fail_clearly(tmp_path, content, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(content)
    load_or_clear_error(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200), suffix=st.sampled_from(SUFFIXES))
def test_arbitrary_unicode_loads_or_fails_clearly(tmp_path, text, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_text(text, encoding="utf-8")
    load_or_clear_error(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=10)),
                     min_size=1, max_size=8))
def test_arbitrary_rows_round_trip_through_csv(tmp_path, rows):
    path = write_csv(tmp_path / "rows.csv", rows)
    expected = [(text.strip(), intent.strip()) for text, intent in rows]
    if any("\x00" in text + intent for text, intent in rows) or not all(t and i for t, i in expected):
        # a NUL byte, or a text or intent that is only whitespace: refused in one line
        with pytest.raises(IntentbalError) as info:
            load_intents(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
        return
    data = load_intents(path)
    assert list(zip(data.texts, data.intents, strict=True)) == expected
