"""What a run was made from: versions, the resolved config, data checksums and the seed."""

from __future__ import annotations

import hashlib
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from intentbal.config import Config

PACKAGES = ("intentbal", "torch", "transformers", "datasets", "nlpaug", "scikit-learn", "pydantic", "numpy")


def build_manifest(config: Config, *, command: list[str] | None = None) -> dict[str, Any]:
    """A JSON-ready description of a run; data files are identified by their SHA-256."""
    data = {key: _data_checksum(path) for key, path in (("train", config.data.train), ("eval", config.data.eval))
            if path is not None}
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


def _data_checksum(path: Path) -> dict[str, Any]:
    """SHA-256 of a file, or of every file of a folder (a saved dataset); a Hub name has none."""
    path = Path(str(path).split("#")[0]) if not Path(path).exists() else Path(path)
    if path.is_file():
        return {"path": str(path), "sha256": _sha256(path)}
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        combined = hashlib.sha256("".join(f"{p.relative_to(path)}:{_sha256(p)}\n" for p in files).encode())
        return {"path": str(path), "sha256": combined.hexdigest(), "files": len(files)}
    return {"path": str(path), "sha256": None, "note": "not a local file (a Hub dataset name)"}


def _sha256(path: Path) -> str:
    from intentbal.model.loading import sha256_file

    return sha256_file(path)
