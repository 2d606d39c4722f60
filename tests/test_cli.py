import json
import subprocess
import sys
import traceback

import pytest

from intentbal.errors import IntentbalError

from conftest import ROOT, TOY, one_line_error, read_csv, run_cli, set_args, write_csv


@pytest.fixture
def eval_csv(tmp_path):
    rows = [("where is my parcel now", "track_order"), ("refund me please", "refund"),
            ("i forgot the password", "password"), ("my card was stolen", "fraud"),
            ("fraud alert on my card", "fraud"), ("hello there", "greeting")]
    return write_csv(tmp_path / "eval.csv", rows)


def test_train_writes_a_complete_run(tmp_path, toy_csv, eval_csv, fast_overrides, capsys):
    out = tmp_path / "run"
    sets = set_args(fast_overrides)
    assert run_cli("train", "--train", toy_csv, "--eval", eval_csv, "--output", out, *sets) == 0
    printed = capsys.readouterr().out
    assert "fraud" in printed and "tail recall" in printed and "greeting" in printed
    for name in ("model/config.json", "model/model.safetensors", "model/intentbal.json", "config.yaml",
                 "profile.json", "augmentation.jsonl", "train_metrics.json", "report.json",
                 "report.md", "per_intent.csv", "predictions.csv"):
        assert (out / name).is_file(), name
    assert not list(tmp_path.glob(".run*")), "no temporary folder left behind"

    report = json.loads((out / "report.json").read_text())
    rows = {r["intent"]: r for r in report["intents"]}
    assert rows["fraud"]["train_count"] == 3 and rows["fraud"]["augmented_count"] == 6
    assert rows["greeting"]["tier"] == "unseen" and rows["greeting"]["recall"] == 0.0
    assert report["summary"]["unseen_in_train"] == ["greeting"]
    preds = read_csv(out / "predictions.csv")
    accuracy = sum(p["intent"] == p["prediction"] for p in preds) / len(preds)
    assert report["summary"]["accuracy"] == pytest.approx(accuracy)

    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["train_samples"] > 0 and metrics["train_samples_per_second"] > 0
    synthetic = [json.loads(line) for line in (out / "augmentation.jsonl").read_text().splitlines()]
    assert {s["intent"] for s in synthetic} == {"password", "fraud"}
    assert all(s["source_text"] in TOY[s["intent"]] for s in synthetic)


@pytest.mark.parametrize("head", ["prototype", "standard"])
def test_saved_model_works_with_transformers_pipeline(tmp_path, toy_csv, fast_overrides, head):
    from transformers import pipeline

    from intentbal.inference.classifier import IntentClassifier

    out = tmp_path / "run"
    sets = set_args([*fast_overrides, f"model.head={head}"])
    assert run_cli("train", "--train", toy_csv, "--output", out, *sets) == 0
    # the prototype head's code travels in the folder; transformers runs it only when trusted
    remote = {"trust_remote_code": True} if head == "prototype" else {}
    assert (out / "model" / "modeling.py").is_file() == (head == "prototype")
    classify = pipeline("text-classification", model=str(out / "model"), **remote)
    texts = ["where is my parcel", "refund please", "forgot password", "stolen card"]
    theirs = [r["label"] for r in classify(texts)]
    ours, _ = IntentClassifier.load(out / "model").predict(texts)
    assert theirs == ours and set(theirs) <= set(TOY)
    config = json.loads((out / "model" / "config.json").read_text())
    assert set(config["label2id"]) == set(TOY)


@pytest.mark.slow  # trains through the CLI
def test_train_without_eval_holds_out_a_split(tmp_path, fast_overrides, capsys):
    rows = [(t, i) for i, ts in TOY.items() for t in ts] + [("lonely example text", "singleton")]
    data = write_csv(tmp_path / "d.csv", rows)
    out = tmp_path / "run"
    sets = set_args(fast_overrides)
    assert run_cli("train", "--train", data, "--output", out, *sets) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["not_evaluable"] == ["singleton"]
    single = next(r for r in report["intents"] if r["intent"] == "singleton")
    assert single["recall"] is None and single["train_count"] == 1
    assert "not evaluable" in capsys.readouterr().out


@pytest.mark.slow  # trains through the CLI; test_train_writes_a_complete_run is the fast one
def test_evaluate_and_predict_commands(tmp_path, toy_csv, eval_csv, fast_overrides, capsys):
    out = tmp_path / "run"
    sets = set_args(fast_overrides)
    assert run_cli("train", "--train", toy_csv, "--eval", eval_csv, "--output", out, *sets) == 0
    trained = json.loads((out / "report.json").read_text())
    assert run_cli("evaluate", "--model", out / "model", "--data", eval_csv, "--output", tmp_path / "ev") == 0
    again = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert again == trained, "evaluating the saved model reproduces the training run's report"

    texts = tmp_path / "texts.csv"
    texts.write_text("text\nwhere is my parcel\nrefund me\n")
    assert run_cli("predict", "--model", out / "model", "--input", texts, "--output", tmp_path / "p.csv") == 0
    rows = read_csv(tmp_path / "p.csv")
    assert [r["text"] for r in rows] == ["where is my parcel", "refund me"]
    assert set(rows[0]) == {"text", "prediction", "confidence"}
    assert all(r["prediction"] in TOY and 0 < float(r["confidence"]) <= 1 for r in rows)
    assert run_cli("predict", "--model", out / "model", "--input", eval_csv, "--output", tmp_path / "q.csv") == 0
    assert "intent" in (tmp_path / "q.csv").read_text().splitlines()[0].split(",")


def test_profile_command(tmp_path, toy_csv, capsys):
    assert run_cli("profile", toy_csv, "--output", tmp_path / "p.json") == 0
    profile = json.loads((tmp_path / "p.json").read_text())
    assert profile["intents"][0] == {"intent": "fraud", "count": 3, "share": 3 / 21, "tier": "rare"}
    assert "fewer than 5 examples: fraud, password" in capsys.readouterr().out


@pytest.mark.parametrize("args, fragment", [
    (["train", "--train", "missing.csv"], "missing.csv: file not found"),
    (["train", "--set", "train.epochs=-2"], "train.epochs"),
    (["train", "--set", "train.weighting=focal"], "train.weighting"),
    (["profile", "{toy}", "--set", "data.intent_column=goal"], "expected an intent column 'goal'"),
    (["train"], "no training data"),
    (["evaluate", "--model", "nowhere", "--data", "{toy}", "--output", "x"], "model nowhere"),
])
def test_user_errors_exit_2_with_one_line(args, fragment, tmp_path, toy_csv, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [a.format(toy=toy_csv) for a in args]
    assert run_cli(*args) == 2
    assert fragment in one_line_error(capsys)
    assert not (tmp_path / "x").exists() and not (tmp_path / "runs").exists()


def test_argument_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        run_cli("train", "--epochs", "3")
    assert info.value.code == 2
    assert "unrecognized arguments: --epochs 3" in one_line_error(capsys)


@pytest.mark.slow  # trains through the CLI
def test_failed_training_leaves_no_output(tmp_path, toy_csv, fast_overrides, monkeypatch):
    import intentbal.reports.files as scoring

    def boom(*args, **kwargs):
        raise RuntimeError("killed mid-write")

    out = tmp_path / "run"
    monkeypatch.setattr(scoring, "write_report", boom)
    sets = set_args(fast_overrides)
    with pytest.raises(RuntimeError):
        run_cli("train", "--train", toy_csv, "--output", out, *sets)
    assert list(tmp_path.iterdir()) == [toy_csv]


def test_real_process_bad_input_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes("text,intent\ncaf\xe9,x\n".encode("latin-1"))
    proc = subprocess.run([sys.executable, "-m", "intentbal.cli", "profile", str(bad)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"intentbal: error: {bad}:2: not valid UTF-8 (byte 0xe9); re-save the file as UTF-8"
    assert not (tmp_path / "profile.json").exists()


@pytest.mark.parametrize("command, cause", [
    (["profile", "{bad}", "--output", "{tmp}/p.json"], UnicodeDecodeError),
    (["compare", "{tmp}/missing.json", "{tmp}/missing.json"], FileNotFoundError),
])
def test_debug_shows_the_cause_the_plain_error_hides(command, cause, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes("text,intent\ncaf\xe9,x\n".encode("latin-1"))
    args = [a.format(bad=bad, tmp=tmp_path) for a in command]
    assert run_cli(*args) == 2
    assert cause.__name__ not in one_line_error(capsys)
    with pytest.raises(IntentbalError) as info:
        run_cli(*args, "--debug")
    assert isinstance(info.value.__cause__, cause)
    shown = "".join(traceback.format_exception(info.value))
    assert cause.__name__ in shown and "direct cause of the following exception" in shown
    assert not (tmp_path / "p.json").exists()


def test_import_is_light():
    code = "import sys, intentbal, intentbal.cli, intentbal.config; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip() == "False"


@pytest.mark.slow  # three fine-tunes
def test_train_with_a_soup_writes_one_model_from_two_fine_tunes(tmp_path, toy_csv, eval_csv, fast_overrides):
    sets = set_args([*fast_overrides, "train.epochs=2"])
    assert run_cli("train", "--train", toy_csv, "--eval", eval_csv, "--output", tmp_path / "one", *sets) == 0
    assert run_cli("train", "--train", toy_csv, "--eval", eval_csv, "--output", tmp_path / "soup", *sets,
                   "--set", "train.soup=2") == 0
    one, two = (json.loads((tmp_path / d / "train_metrics.json").read_text()) for d in ("one", "soup"))
    assert two["steps"] == 2 * one["steps"]
    assert (tmp_path / "soup" / "model" / "model.safetensors").is_file()
    assert not list(tmp_path.glob(".soup*")), "the members' checkpoints are removed once the run is written"
