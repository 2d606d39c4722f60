"""intentbal: intent-classifier training that does not forget rare intents.

The package stays light at import (no torch); the public functions are loaded on use::

    from intentbal import load_config, train_run
    run = train_run(load_config("configs/default.yaml", overrides=["data.train=my.csv"]))
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import import_module
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, SourceFileLoader, SourcelessFileLoader
from types import ModuleType
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
    "profile_data": "intentbal.jobs.profile",
    "augment_file": "intentbal.jobs.augment",
    "train_run": "intentbal.jobs.train",
    "evaluate_model": "intentbal.jobs.evaluate",
    "predict_file": "intentbal.jobs.predict",
    "audit_model": "intentbal.jobs.audit",
    "compare_files": "intentbal.jobs.audit",
    "cross_validate": "intentbal.jobs.cv",
    "fit": "intentbal.recipe",
    "suggest_file": "intentbal.jobs.suggest",
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


# The prototype head's classes join transformers' AutoConfig and AutoModelForSequenceClassification
# (intentbal.modeling.register), so transformers.pipeline loads intentbal folders without
# trust_remote_code. Registering needs torch, which `import intentbal` must not import: it is done
# as soon as transformers loads its auto classes, by a finder that watches transformers' imports.
_AUTO = ("transformers.models.auto.configuration_auto", "transformers.models.auto.modeling_auto")


class _RegisterWhenTransformersLoads(MetaPathFinder):
    """Wraps the loader of each ``transformers`` module imported until registration is done.

    It registers when an auto-class module is loaded and no transformers module (or the head's
    own module) is half-imported: importing the head earlier could meet a circular import.
    """

    def __init__(self) -> None:
        self.busy = False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not fullname.startswith("transformers.") and fullname not in ("transformers", "intentbal.modeling"):
            return None
        for finder in sys.meta_path:  # the spec the import would have found without this finder
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if not isinstance(loader, (SourceFileLoader, SourcelessFileLoader)):  # a loader of one file, not shared
            return spec
        exec_module = loader.exec_module

        def exec_then_register(module: ModuleType) -> None:
            exec_module(module)
            self.try_register(done=fullname)

        loader.exec_module = exec_then_register  # type: ignore[method-assign]
        return spec

    def try_register(self, *, done: str | None = None) -> None:
        if self.busy or not any(name in sys.modules for name in _AUTO):
            return
        if any(_half_imported(name) for name in list(sys.modules)
               if name != done and (name.startswith("transformers") or name == "intentbal.modeling")):
            return
        self.busy = True
        try:
            import_module("intentbal.modeling").register()
        except ImportError:  # no torch: transformers cannot load these models anyway
            pass
        finally:
            self.busy = False
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def _half_imported(name: str) -> bool:
    return bool(getattr(getattr(sys.modules.get(name), "__spec__", None), "_initializing", False))


if not any(type(f).__name__ == _RegisterWhenTransformersLoads.__name__ for f in sys.meta_path):
    _hook = _RegisterWhenTransformersLoads()
    sys.meta_path.insert(0, _hook)
    _hook.try_register()  # transformers' auto classes may already be loaded
