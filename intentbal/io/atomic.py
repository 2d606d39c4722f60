"""Atomic writes: a file is complete and in place, or absent."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from intentbal.errors import IntentbalError

log = logging.getLogger(__name__)


def resolve_output(target: Path) -> Path:
    """``target``, or where it points when it is a symbolic link (the link itself is never replaced)."""
    target = Path(target)
    if not target.is_symlink():
        return target
    real = Path(os.path.realpath(target))
    log.info("--output %s is a link: writing its target %s", target, real)
    return real


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
    A link at ``path`` is followed.
    """
    path = resolve_output(Path(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.partial-{os.getpid()}-", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        error = as_write_error(path, exc)
        if error is not None:
            raise error from exc
        raise


def json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


@contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM held back while the block runs (main thread, POSIX); delivered after."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


PARTIAL = re.compile(r"^\.(.+)\.partial-\d+-[^/]+$")


DISK_FULL = re.compile(r"os error 28|StorageFull|No space left", re.I)


def as_write_error(path: Path, exc: BaseException) -> IntentbalError | None:
    """The one-line error for a failed write: an OSError, or another library's error wrapping one
    (safetensors reports a full disk as ``SafetensorError: ... os error 28``); None for others."""
    if isinstance(exc, IntentbalError):
        return None
    if isinstance(exc, OSError):
        return write_error(path, exc)
    if isinstance(exc, Exception) and DISK_FULL.search(str(exc)):
        return write_error(path, OSError(28, os.strerror(28)))
    return None


def write_error(path: Path, exc: OSError) -> IntentbalError:
    reason = exc.strerror or type(exc).__name__
    shown = Path(*(PARTIAL.sub(r"\1", part) for part in Path(path).parts))  # name the final path, not ours
    if isinstance(exc, IsADirectoryError):
        return IntentbalError(f"{shown}: expected a file name for the output, found a folder; choose a file name")
    return IntentbalError(
        f"{shown}: could not write the output ({reason}); free disk space or choose a writable --output"
    )
