"""intentbal: intent-classifier training that does not forget rare intents.

The package stays light at import (no torch) and does nothing when imported; the public functions
are loaded on use::

    from intentbal import load_config, train_run
    run = train_run(load_config("configs/default.yaml", overrides=["data.train=my.csv"]))

To load a saved model with ``transformers.pipeline`` without ``trust_remote_code``, call
:func:`register` first (intentbal's own loaders do it for you).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "Config": "intentbal.config",
    "load_config": "intentbal.config",
    "IntentbalError": "intentbal.errors",
    "IntentData": "intentbal.data.types",
    "load_intents": "intentbal.data.readers",
    "stratified_split": "intentbal.data.splits",
    "profile_intents": "intentbal.data.profiling",
    "augment_rare": "intentbal.rebalance.augmentation",
    "class_weights": "intentbal.training.losses",
    "evaluate_predictions": "intentbal.evaluation.metrics",
    "IntentClassifier": "intentbal.inference.classifier",
    "profile_data": "intentbal.commands.profile",
    "augment_file": "intentbal.commands.augment",
    "train_run": "intentbal.commands.train",
    "evaluate_model": "intentbal.commands.evaluate",
    "predict_file": "intentbal.commands.predict",
    "audit_model": "intentbal.commands.audit",
    "compare_files": "intentbal.commands.audit",
    "cross_validate": "intentbal.commands.cv",
    "fit": "intentbal.training.recipe",
    "suggest_file": "intentbal.commands.suggest",
    "audit_report": "intentbal.evaluation.gate",
    "compare_reports": "intentbal.evaluation.gate",
    "wilson_interval": "intentbal.evaluation.metrics",
    "analyse_fallback": "intentbal.evaluation.fallback",
    "choose_threshold": "intentbal.evaluation.fallback",
}

__all__ = ["__version__", "register", *_EXPORTS]


def register() -> None:
    """Teach transformers' ``AutoConfig`` and ``AutoModelForSequenceClassification`` the prototype
    head (``intentbal-prototype``), so ``transformers.pipeline("text-classification", model=DIR)``
    loads an intentbal model folder with intentbal's own code, without ``trust_remote_code``.
    Imports torch and transformers; safe to call more than once."""
    import_module("intentbal.model.modeling").register()


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'intentbal' has no attribute {name!r}")
