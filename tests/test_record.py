"""The model record (intentbal.json): the whole config, a digest of every input, no path of the machine."""

from __future__ import annotations

import json

from pydantic import BaseModel

from intentbal.config import Config
from intentbal.model.record import ModelRecord, read_record

from conftest import ROOT, TOY_EVAL, run_cli, set_args, toy_rows, write_csv


def fields_of(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field of a config model, sections included, as dotted keys."""
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys |= fields_of(field.annotation, f"{prefix}{name}.")
    return keys


def keys_of(doc: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, value in doc.items():
        keys.add(prefix + name)
        if isinstance(value, dict):
            keys |= keys_of(value, f"{prefix}{name}.")
    return keys


def test_a_run_records_every_config_field_every_input_and_no_path_of_the_machine(tmp_path, fast_overrides):
    train = write_csv(tmp_path / "train.csv", toy_rows())
    evalset = write_csv(tmp_path / "eval.csv", TOY_EVAL)
    validation = write_csv(tmp_path / "validation.csv", [("track my parcel", "track_order"), ("refund it", "refund")])
    pool = write_csv(tmp_path / "pool.csv", [("where has my parcel gone",), ("money back now",)], header=("text",))
    described = write_csv(tmp_path / "descriptions.csv", [("fraud", "someone used my card")],
                          header=("intent", "description"))
    out = tmp_path / "run"
    assert run_cli("train", "--train", train, "--eval", evalset, "--validation", validation, "--unlabeled", pool,
                   "--output", out, *set_args([*fast_overrides, f"data.descriptions={described}", "train.epochs=2",
                                               "evaluate.plots=false"])) == 0
    record = json.loads((out / "model" / "intentbal.json").read_text())
    assert record["format"] == 2
    assert keys_of(record["config"]) >= fields_of(Config)  # every field of the config, none copied by hand
    assert set(record["files"]) == {"train", "validation", "eval", "unlabeled", "descriptions"}
    import hashlib

    for role, path in (("train", train), ("validation", validation), ("eval", evalset), ("unlabeled", pool),
                       ("descriptions", described)):
        assert record["files"][role] == {"name": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["data"]) == {"train", "validation", "eval", "unlabeled", "descriptions"}
    for text_file in (p for p in (out / "model").iterdir() if p.suffix in (".json", ".md", ".py", ".txt")):
        assert str(tmp_path) not in text_file.read_text(encoding="utf-8"), text_file.name
    back = read_record(out / "model")
    assert isinstance(back, ModelRecord) and back.config is not None and back.config.seed == 0
    assert back.settings()["epochs"] == 2 and back.settings()["base_model"] is None  # the tiny model is local


def test_a_record_of_the_earlier_form_reads_as_one():
    record = read_record(ROOT / "tests" / "fixtures" / "model-0.1.0")
    assert record is not None and record.format == 1 and record.config is None
    assert record.max_length == 64 and record.settings()["head"] == "prototype"
    assert record.fallback is not None and record.fallback.threshold == 0.3
