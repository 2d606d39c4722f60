"""Atomic writing: a file or folder is either complete and in place, or absent."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from intentbal.errors import IntentbalError


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; move it into place on success.

    A previous ``target`` is replaced only once the new one is complete, and only if it is
    empty or an earlier intentbal output: a folder of other files is never deleted. On any
    error the temporary folder is removed, so a crash never leaves a folder that looks finished.
    """
    target = Path(target)
    check_output_dir(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as exc:
        raise _write_error(target, exc) from exc
    try:
        yield tmp
        _swap_into_place(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(target, exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    with atomic_file(path) as tmp, os.fdopen(os.open(tmp, os.O_WRONLY), "wb") as f:
        f.write(data)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer to fill; rename it to ``path`` on success.

    On any error the temporary file is removed and ``path`` is left as it was, so a reader
    never sees half a file. For writers that want a file name, not bytes (``torch.onnx.export``).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.partial-", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from exc
        raise


def json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


OUR_MARKERS = ("report.json", "manifest.json", "train_metrics.json", "state.pt")


def check_output_dir(target: Path) -> None:
    """Fail early, before any long work, when ``target`` cannot become an output folder:
    it is a file, a folder of other files, or its parent cannot be written."""
    target = Path(target)
    if not target.exists():
        existing = next(p for p in target.absolute().parents if p.exists())
        try:  # a probe in the nearest existing folder; nothing is created for good
            os.rmdir(tempfile.mkdtemp(prefix=".intentbal-probe-", dir=existing))
        except OSError as exc:
            raise _write_error(target, exc) from exc
        return
    if not target.is_dir():
        raise IntentbalError(f"{target}: expected a folder for the output, found a file; choose another --output")
    if any(target.iterdir()) and not any((target / m).exists() for m in OUR_MARKERS):
        raise IntentbalError(
            f"{target}: expected a new folder or an earlier intentbal output, found a folder of other files; "
            "choose another --output (nothing was deleted)"
        )


def _swap_into_place(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _remove_stale(target: Path) -> None:
    """Temporary folders left by a killed process (its pid is gone) are removed."""
    for tmp in target.parent.glob(f".{target.name}.partial-*"):
        pid = tmp.name.rsplit(".partial-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


PARTIAL = re.compile(r"^\.(.+)\.partial-\d+-[^/]+$")


def _write_error(path: Path, exc: OSError) -> IntentbalError:
    reason = exc.strerror or type(exc).__name__
    shown = Path(*(PARTIAL.sub(r"\1", part) for part in Path(path).parts))  # name the final path, not ours
    return IntentbalError(
        f"{shown}: could not write the output ({reason}); free disk space or choose a writable --output"
    )
