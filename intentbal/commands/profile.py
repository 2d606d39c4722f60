"""``intentbal profile``: per-intent counts of the training data, checked against eval data."""

from __future__ import annotations

from pathlib import Path

from intentbal.config import Config
from intentbal.data.inputs import load_data, load_training, profile_of, run_inputs
from intentbal.data.profiling import Profile
from intentbal.io.atomic import atomic_write_text, json_text
from intentbal.io.folders import output_file


def profile_data(config: Config, *, output: Path | None = None, overwrite: bool = False) -> Profile:
    """Profile ``data.train`` (checking ``data.eval``'s intents and texts against it when given:
    intents missing from train, rows also in train); with ``output`` (a ``.json`` file, replaced
    only with ``overwrite``), also write it there as JSON."""
    if output is None:
        return _profile(config, output=None)
    with output_file(output, suffixes=(".json",), inputs=run_inputs(config), overwrite=overwrite) as output:
        return _profile(config, output=output)


def _profile(config: Config, *, output: Path | None) -> Profile:
    train = load_training(config, missing="no data to profile: expected a DATA path")
    eval_data = load_data(config, config.data.eval, "eval") if config.data.eval else None
    profile = profile_of(config, train, eval_data.intents if eval_data else (),
                         eval_texts=eval_data.texts if eval_data else None)
    if output is not None:
        atomic_write_text(output, json_text(profile.to_dict()))
    return profile
