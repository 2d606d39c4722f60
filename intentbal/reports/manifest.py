"""What a run was made from: versions, the resolved config, the SHA-256 of every input and the seed."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

from intentbal.config import Config
from intentbal.io.digests import input_digest

PACKAGES = ("intentbal", "torch", "transformers", "datasets", "nlpaug", "scikit-learn", "pydantic", "numpy")
ROLES = ("train", "validation", "eval", "unlabeled", "descriptions")


def build_manifest(config: Config, *, command: list[str] | None = None) -> dict[str, Any]:
    """A JSON-ready description of a run: every data file it read (``data.train``, ``validation``,
    ``eval``, ``unlabeled``, ``descriptions``) identified by its SHA-256, the config file too."""
    data = {role: input_digest(path).to_dict() for role in ROLES if (path := getattr(config.data, role)) is not None}
    if config.source is not None:
        data["config"] = input_digest(config.source).to_dict()
    return {
        "seed": config.seed,
        "versions": {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}},
        "platform": platform.platform(),
        "command": command if command is not None else sys.argv,
        "data": data,
        "config": config.model_dump(mode="json"),
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
