"""SHA-256 digests of what a run reads: a file, every file of a saved dataset folder, or nothing for
a Hub dataset name."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class InputDigest:
    """A run input as named, and its SHA-256 (None when it is not a local file or folder)."""

    path: str
    sha256: str | None
    files: int | None = None  # a folder: how many files the digest covers

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"path": self.path, "sha256": self.sha256}
        if self.files is not None:
            out["files"] = self.files
        if self.sha256 is None:
            out["note"] = "not a local file (a Hub dataset name)"
        return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def input_digest(path: str | Path) -> InputDigest:
    """The digest of a run input: a file's SHA-256, or one over every file of a folder (a saved
    dataset), in path order; ``PATH#SPLIT`` names ``PATH``."""
    path = Path(str(path).split("#")[0]) if not Path(path).exists() else Path(path)
    if path.is_file():
        return InputDigest(path=str(path), sha256=sha256_file(path))
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        combined = hashlib.sha256("".join(f"{p.relative_to(path)}:{sha256_file(p)}\n" for p in files).encode())
        return InputDigest(path=str(path), sha256=combined.hexdigest(), files=len(files))
    return InputDigest(path=str(path), sha256=None)
