"""intentbal: intent-classifier training that does not forget rare intents.

The package stays light at import (no torch); the public functions are loaded on use::

    from intentbal import load_config, train_run
    run = train_run(load_config("configs/default.yaml", overrides=["data.train=my.csv"]))
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "intentbal.config",
    "load_config": "intentbal.config",
    "IntentbalError": "intentbal.errors",
    "IntentData": "intentbal.data",
    "load_intents": "intentbal.data",
    "stratified_split": "intentbal.data",
    "profile_intents": "intentbal.profile",
    "augment_rare": "intentbal.augment",
    "class_weights": "intentbal.losses",
    "evaluate_predictions": "intentbal.evaluate",
    "IntentClassifier": "intentbal.predict",
    "profile_data": "intentbal.pipeline",
    "augment_file": "intentbal.pipeline",
    "train_run": "intentbal.pipeline",
    "evaluate_model": "intentbal.pipeline",
    "predict_file": "intentbal.pipeline",
    "audit_model": "intentbal.pipeline",
    "compare_files": "intentbal.pipeline",
    "cross_validate": "intentbal.cv",
    "audit_report": "intentbal.audit",
    "compare_reports": "intentbal.audit",
    "wilson_interval": "intentbal.evaluate",
    "analyse_fallback": "intentbal.fallback",
    "choose_threshold": "intentbal.fallback",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'intentbal' has no attribute {name!r}")
