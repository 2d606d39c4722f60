"""No command destroys, overwrites or misreads the user's data: destinations are checked first."""

from __future__ import annotations

import csv
import json
import os
import stat

import pytest

from conftest import one_line_error, run_cli, toy_rows, write_csv

RUN_FILES = {"model", "config.yaml", "manifest.json", "train_metrics.json"}


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model):
    """A finished train run."""
    out = tmp_path_factory.mktemp("safety") / "run"
    train = write_csv(out.parent / "train.csv", toy_rows())
    held = write_csv(out.parent / "held.csv", [("track my order", "track_order"), ("refund it", "refund")])
    sets = ["--set", f"model.name_or_path={tiny_model}", "--set", "train.epochs=2", "--set", "train.batch_size=8",
            "--set", "data.validation_fraction=0"]
    assert run_cli("train", "--train", train, "--eval", held, "--output", out, *sets) == 0
    return out


@pytest.fixture
def eval_csv(tmp_path):
    return write_csv(tmp_path / "eval.csv", [("where is my parcel now", "track_order"), ("refund me please", "refund")])


def snapshot(folder):
    """Every file under ``folder`` with its bytes: equal snapshots mean nothing was touched."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- 1. a report never replaces a train run, nor any input -----------------------------------------

@pytest.mark.parametrize("command", ["evaluate", "audit"])
def test_report_into_a_train_run_is_refused_and_the_run_kept(command, run, eval_csv, capsys):
    before = snapshot(run)
    assert run_cli(command, "--model", run / "model", "--data", eval_csv, "--output", run) == 2
    err = one_line_error(capsys)
    assert "train" in err and "eval-" in err  # says what was found and where reports may go
    assert snapshot(run) == before and {p.name for p in run.iterdir()} >= RUN_FILES


def test_report_beside_a_train_run_is_allowed(run, eval_csv, capsys):
    before = snapshot(run)
    out = run / "eval-test"
    try:
        assert run_cli("evaluate", "--model", run / "model", "--data", eval_csv, "--output", out) == 0
        assert (out / "report.json").is_file()
        assert {k: v for k, v in snapshot(run).items() if not k.startswith("eval-test/")} == before
    finally:
        import shutil

        shutil.rmtree(out, ignore_errors=True)


@pytest.mark.parametrize("where", ["model", "model_parent", "data_parent"])
def test_report_onto_its_own_input_is_refused(where, run, tmp_path, capsys):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data = write_csv(data_dir / "eval.csv", [("where is my parcel now", "track_order")])
    output = {"model": run / "model", "model_parent": run, "data_parent": data_dir}[where]
    before_run, before_data = snapshot(run), snapshot(data_dir)
    assert run_cli("evaluate", "--model", run / "model", "--data", data, "--output", output) == 2
    one_line_error(capsys)
    assert snapshot(run) == before_run and snapshot(data_dir) == before_data


def test_evaluate_may_replace_its_own_earlier_report(run, eval_csv, tmp_path, capsys):
    out = tmp_path / "ev"
    assert run_cli("evaluate", "--model", run / "model", "--data", eval_csv, "--output", out) == 0
    (out / "report.md").write_text("stale")
    assert run_cli("evaluate", "--model", run / "model", "--data", eval_csv, "--output", out) == 0
    assert (out / "report.md").read_text() != "stale"


def test_earlier_output_with_foreign_files_is_not_replaced(run, eval_csv, tmp_path, capsys):
    out = tmp_path / "ev"
    assert run_cli("evaluate", "--model", run / "model", "--data", eval_csv, "--output", out) == 0
    (out / "notes.txt").write_text("mine")
    assert run_cli("evaluate", "--model", run / "model", "--data", eval_csv, "--output", out) == 2
    assert "notes.txt" in one_line_error(capsys)
    assert (out / "notes.txt").read_text() == "mine"


def test_train_into_an_evaluate_output_is_refused(run, eval_csv, tmp_path, toy_csv, fast_overrides, capsys):
    out = tmp_path / "ev"
    assert run_cli("evaluate", "--model", run / "model", "--data", eval_csv, "--output", out) == 0
    before = snapshot(out)
    sets = [a for s in fast_overrides for a in ("--set", s)]
    assert run_cli("train", "--train", toy_csv, "--output", out, *sets) == 2
    assert "evaluate" in one_line_error(capsys)
    assert snapshot(out) == before


def test_train_onto_the_run_holding_its_base_model_is_refused(run, tmp_path, toy_csv, fast_overrides, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    before = snapshot(copy)
    sets = [a for s in fast_overrides for a in ("--set", s)] + ["--set", f"model.name_or_path={copy / 'model'}"]
    assert run_cli("train", "--train", toy_csv, "--output", copy, *sets) == 2
    assert "input" in one_line_error(capsys)
    assert snapshot(copy) == before


def test_evaluate_onto_the_report_holding_its_data_is_refused(run, eval_csv, tmp_path, capsys):
    out = tmp_path / "ev"
    assert run_cli("evaluate", "--model", run / "model", "--data", eval_csv, "--output", out) == 0
    before = snapshot(out)
    assert run_cli("evaluate", "--model", run / "model", "--data", out / "predictions.csv", "--output", out) == 2
    assert "input" in one_line_error(capsys)
    assert snapshot(out) == before


def test_train_onto_a_folder_of_other_files_is_refused(tmp_path, fast_overrides, capsys):
    out = tmp_path / "run"
    out.mkdir()
    train = write_csv(out / "train.csv", toy_rows())
    sets = [a for s in fast_overrides for a in ("--set", s)]
    assert run_cli("train", "--train", train, "--output", out, *sets) == 2
    assert "other files" in one_line_error(capsys)
    assert [p.name for p in out.iterdir()] == ["train.csv"]


def test_legacy_train_run_without_a_marker_is_still_recognised(run, tmp_path, capsys):
    from intentbal.errors import IntentbalError
    from intentbal.io.folders import check_output_dir

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("config.yaml", "manifest.json", "train_metrics.json"):
        (legacy / name).write_text("{}")
    (legacy / "model").mkdir()
    check_output_dir(legacy, kind="train")  # an earlier run of the same kind may be replaced
    with pytest.raises(IntentbalError, match="train"):
        check_output_dir(legacy, kind="evaluate")


# --- 2. files: never onto an input, never over an existing file without --overwrite -----------------

@pytest.fixture
def texts(tmp_path):
    return write_csv(tmp_path / "texts.csv", [("where is my parcel",), ("refund please",)], header=("text",))


def test_predict_onto_its_input_is_refused_even_with_overwrite(run, texts, capsys):
    before = texts.read_bytes()
    for extra in ([], ["--overwrite"]):
        assert run_cli("predict", "--model", run / "model", "--input", texts, "--output", texts, *extra) == 2
        assert "input" in one_line_error(capsys)
        assert texts.read_bytes() == before


def test_predict_refuses_an_existing_file_without_overwrite(run, texts, tmp_path, capsys):
    out = tmp_path / "preds.csv"
    out.write_text("precious\n")
    assert run_cli("predict", "--model", run / "model", "--input", texts, "--output", out) == 2
    assert "--overwrite" in one_line_error(capsys)
    assert out.read_text() == "precious\n"
    assert run_cli("predict", "--model", run / "model", "--input", texts, "--output", out, "--overwrite") == 0
    assert out.read_text().startswith("text,prediction,confidence")


def test_predict_into_a_folder_says_a_file_name_is_expected(run, texts, tmp_path, capsys):
    folder = tmp_path / "somewhere"
    folder.mkdir()
    assert run_cli("predict", "--model", run / "model", "--input", texts, "--output", folder) == 2
    err = one_line_error(capsys)
    assert "file name" in err and "folder" in err and "disk space" not in err
    assert not any(folder.iterdir())


def test_augment_refuses_its_input_and_existing_files(toy_csv, tmp_path, capsys):
    before = toy_csv.read_bytes()
    assert run_cli("augment", toy_csv, "--output", toy_csv, "--overwrite") == 2
    assert "input" in one_line_error(capsys)
    assert toy_csv.read_bytes() == before
    out = tmp_path / "aug.csv"
    out.write_text("precious\n")
    assert run_cli("augment", toy_csv, "--output", out, "--set", "augment.augmenters=[duplicate]") == 2
    assert "--overwrite" in one_line_error(capsys)
    assert out.read_text() == "precious\n"
    assert run_cli("augment", toy_csv, "--output", out, "--set", "augment.augmenters=[duplicate]",
                   "--overwrite") == 0
    assert out.read_text().startswith("text,intent,source_text,augmenter")


def test_profile_refuses_an_existing_file_and_its_input(toy_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "profile.json").write_text("precious")
    assert run_cli("profile", toy_csv) == 2  # the default --output profile.json exists
    assert "--overwrite" in one_line_error(capsys)
    assert (tmp_path / "profile.json").read_text() == "precious"
    assert run_cli("profile", toy_csv, "--overwrite") == 0
    assert json.loads((tmp_path / "profile.json").read_text())["n_examples"] == len(toy_rows())
    before = toy_csv.read_bytes()
    assert run_cli("profile", toy_csv, "--output", toy_csv, "--overwrite") == 2
    one_line_error(capsys)
    assert toy_csv.read_bytes() == before


def test_export_never_writes_its_graph_over_the_weights(run, tmp_path, capsys):
    import shutil

    model = shutil.copytree(run / "model", tmp_path / "model")
    before = snapshot(model)
    assert run_cli("export", "--model", model, "--output", model / "model.safetensors") == 2
    assert ".onnx" in one_line_error(capsys)
    assert run_cli("export", "--model", model, "--output", model) == 2
    assert "folder" in one_line_error(capsys)
    assert snapshot(model) == before


# --- 3. the format follows the suffix -----------------------------------------------------------------

def test_predict_writes_the_format_its_suffix_names(run, texts, tmp_path):
    import pyarrow.parquet as pq

    rows = {}
    for suffix in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"preds.{suffix}"
        assert run_cli("predict", "--model", run / "model", "--input", texts, "--output", out) == 0
        if suffix == "csv":
            with open(out, newline="", encoding="utf-8") as f:
                rows[suffix] = [(r["text"], r["prediction"], float(r["confidence"])) for r in csv.DictReader(f)]
        elif suffix == "jsonl":
            lines = out.read_text(encoding="utf-8").splitlines()
            rows[suffix] = [(d["text"], d["prediction"], d["confidence"]) for d in map(json.loads, lines)]
        else:
            table = pq.read_table(out).to_pylist()
            rows[suffix] = [(d["text"], d["prediction"], d["confidence"]) for d in table]
    assert [r[0] for r in rows["csv"]] == ["where is my parcel", "refund please"]
    assert rows["csv"] == rows["jsonl"] == rows["parquet"]


def test_augment_writes_the_format_its_suffix_names(toy_csv, tmp_path):
    import pyarrow.parquet as pq

    sets = ["--set", "augment.augmenters=[duplicate]"]
    assert run_cli("augment", toy_csv, "--output", tmp_path / "a.jsonl", *sets) == 0
    assert run_cli("augment", toy_csv, "--output", tmp_path / "a.parquet", *sets) == 0
    jsonl = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()]
    assert jsonl == pq.read_table(tmp_path / "a.parquet").to_pylist()
    assert len(jsonl) > len(toy_rows()) and set(jsonl[0]) == {"text", "intent", "source_text", "augmenter"}


def test_augment_writes_rasa_nlu_yaml_that_loads_back(toy_csv, tmp_path):
    import yaml

    from intentbal.data.readers import load_intents

    sets = ["--set", "augment.augmenters=[duplicate,word_swap]", "--set", "augment.target_count=6"]
    assert run_cli("augment", toy_csv, "--output", tmp_path / "a.jsonl", *sets) == 0
    assert run_cli("augment", toy_csv, "--output", tmp_path / "nlu.yml", *sets) == 0
    rows = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()]
    back = load_intents(tmp_path / "nlu.yml")
    assert sorted(zip(back.texts, back.intents)) == sorted((r["text"], r["intent"]) for r in rows)
    doc = yaml.safe_load((tmp_path / "nlu.yml").read_text(encoding="utf-8"))
    examples = [e for item in doc["nlu"] for e in item["examples"]]
    synthetic = [r for r in rows if r["augmenter"]]
    assert synthetic and sum("metadata" in e for e in examples) == len(synthetic)
    assert {(e["text"], e["metadata"]["augmenter"], e["metadata"]["source_text"])
            for e in examples if "metadata" in e} == {(r["text"], r["augmenter"], r["source_text"]) for r in synthetic}


@pytest.mark.parametrize("command", ["predict", "augment"])
def test_unknown_suffix_is_refused_with_the_accepted_ones(command, run, texts, toy_csv, tmp_path, capsys):
    out = tmp_path / "preds.txt"
    args = (["predict", "--model", run / "model", "--input", texts] if command == "predict" else ["augment", toy_csv])
    assert run_cli(*args, "--output", out) == 2
    err = one_line_error(capsys)
    assert ".csv" in err and ".jsonl" in err and ".parquet" in err and ".txt" in err
    assert not out.exists()


# --- 6. every file follows the umask --------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_every_written_file_follows_the_umask(umask, tmp_path, toy_csv, fast_overrides):
    sets = [a for s in fast_overrides for a in ("--set", s)]
    old = os.umask(umask)
    try:
        out = tmp_path / "run"
        assert run_cli("train", "--train", toy_csv, "--output", out, *sets) == 0
        preds = tmp_path / "p.csv"
        assert run_cli("predict", "--model", out / "model", "--input", toy_csv, "--output", preds) == 0
    finally:
        os.umask(old)
    paths = [out, *out.rglob("*"), preds]
    assert (out / "model" / "model.safetensors") in paths
    for path in paths:
        want = (0o777 if path.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(path.stat().st_mode) == want, f"{path}: {oct(stat.S_IMODE(path.stat().st_mode))}"
