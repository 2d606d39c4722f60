"""Cross-validation measures the recipe ``train`` ships: the same fit, on the same rows, gives the same model."""

from __future__ import annotations

import json

import pytest

from intentbal.data.splits import fold_assignment

from conftest import read_csv, run_cli, set_args, toy_rows, write_csv


@pytest.mark.slow  # trains three models twice
@pytest.mark.parametrize("hold_out", [False, True], ids=["no-validation", "validation-held-out"])
def test_a_cv_fold_predicts_exactly_what_train_reports_for_the_same_rows(tmp_path, tiny_model, hold_out):
    from intentbal.commands.cv import cross_validate
    from intentbal.commands.train import train_run
    from intentbal.config import load_config

    rows = toy_rows() + [(f"{t} now", i) for t, i in toy_rows()[:12]]  # 8+ examples: the hold-out takes some
    data = write_csv(tmp_path / "all.csv", rows)
    overrides = [f"model.name_or_path={tiny_model}", "model.max_length=32", "train.epochs=3", "train.batch_size=8",
                 "train.learning_rate=0.003", "augment.enabled=true", "augment.target_count=9",
                 f"data.validation_fraction={0.25 if hold_out else 0}", "evaluate.plots=false"]
    config = load_config(overrides=overrides, values={"data.train": data, "output_dir": tmp_path / "cv"})
    cross_validate(config, folds=2)

    fold = fold_assignment([i for _, i in rows], folds=2, seed=0)
    train = write_csv(tmp_path / "fold-train.csv", [r for r, f in zip(rows, fold) if f != 0])
    held = write_csv(tmp_path / "fold-eval.csv", [r for r, f in zip(rows, fold) if f == 0])
    run = train_run(load_config(overrides=overrides, values={"data.train": train, "data.eval": held,
                                                             "output_dir": tmp_path / "train"}))

    cv_rows = {r["text"]: r for r in read_csv(tmp_path / "cv" / "predictions.csv")}
    train_rows = read_csv(run.output_dir / "predictions.csv")
    assert len(train_rows) == sum(f == 0 for f in fold) > 0
    for row in train_rows:
        theirs = cv_rows[row["text"]]
        assert (row["prediction"], row["intent"]) == (theirs["prediction"], theirs["intent"]), row["text"]
        assert float(row["confidence"]) == pytest.approx(float(theirs["confidence"]), abs=1e-6), row["text"]
    cv_report = json.loads((tmp_path / "cv" / "report.json").read_text())
    assert cv_report["cv"]["taus"][0] == run.adjustment.tau
    assert run.adjustment.chosen_on == ("held out of train" if hold_out else "default")


def test_cv_writes_its_config_and_manifest(tmp_path, tiny_model, capsys):
    data = write_csv(tmp_path / "d.csv", toy_rows())
    sets = set_args([f"model.name_or_path={tiny_model}", "train.epochs=1", "train.batch_size=8",
                     "evaluate.plots=false", "data.validation_fraction=0"])
    assert run_cli("cv", "--train", data, "--folds", "2", "--output", tmp_path / "cv", *sets) == 0
    out = tmp_path / "cv"
    config = (out / "config.yaml").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert "epochs: 1" in config and manifest["config"]["train"]["epochs"] == 1
    assert manifest["data"]["train"]["path"] == str(data)
    assert json.loads((out / "intentbal-output.json").read_text())["kind"] == "cv"

