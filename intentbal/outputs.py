"""Atomic writing: a file or folder is either complete and in place, or absent."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from intentbal.errors import IntentbalError


@contextmanager
def atomic_dir(target: Path, *, kind: str) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; move it into place on success.

    ``kind`` names what writes the folder (``train``, ``evaluate``, ``cv``, ``checkpoint``); it is
    recorded with the list of entries written in ``MARKER``. A previous ``target`` is replaced
    only once the new one is complete, and only as :func:`check_output_dir` allows: it is empty,
    or an earlier output of the same kind holding nothing it did not write. Every file and folder
    gets the permissions the umask gives (some writers, such as safetensors', create 0600 files).
    On any error the temporary folder is removed, so a crash never leaves a folder that looks finished.
    """
    target = Path(target)
    check_output_dir(target, kind=kind)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise _write_error(target, exc) from exc
    try:
        yield tmp
        entries = sorted(p.name for p in tmp.iterdir())
        (tmp / MARKER).write_text(json_text({"kind": kind, "entries": entries}), encoding="utf-8")
        _follow_umask(tmp)
        check_output_dir(target, kind=kind)  # the folder may have changed during the long work
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


MARKER = "intentbal-output.json"  # in every output folder: what wrote it, and the entries it wrote

# What each kind of output folder held before folders carried MARKER, to recognise them.
LEGACY_ENTRIES = {
    "train": {"model", "config.yaml", "manifest.json", "profile.json", "augmentation.jsonl", "train_metrics.json",
              "report.json", "report.md", "per_intent.csv", "report.html", "plots", "fallback_curve.json",
              "predictions.csv"},
    "evaluate": {"report.json", "report.md", "per_intent.csv", "report.html", "plots", "fallback_curve.json",
                 "predictions.csv"},
    "cv": {"report.json", "report.md", "per_intent.csv", "predictions.csv"},
    "checkpoint": {"model.safetensors", "state.pt"},
}
WHAT = {"train": "a train run", "evaluate": "an evaluate or audit report", "cv": "a cv report",
        "checkpoint": "a training checkpoint"}


def check_output_dir(target: Path, *, kind: str, inputs: Iterable[str | Path | None] = ()) -> None:
    """Fail early, before any long work, when ``target`` cannot become an output folder of ``kind``.

    Refused: a file; a folder that is, or holds, one of ``inputs`` (the data and model paths of
    this run); a folder that is neither empty nor an earlier output of the same ``kind``; an
    earlier output holding entries it did not write; a parent that cannot be written.
    """
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
    present = {p.name for p in target.iterdir()}
    if not present:
        return
    found, written = _made_by(target)
    beside = {"evaluate": "eval-NAME", "cv": "cv-NAME"}.get(kind, "NAME")
    if found is None:
        raise IntentbalError(
            f"{target}: expected a new folder or an earlier intentbal output, found a folder of other files; "
            "choose another --output (nothing was deleted)"
        )
    if found != kind:
        raise IntentbalError(
            f"{target}: expected a new folder or an earlier {kind} output to replace, found {WHAT.get(found, found)}, "
            f"which is kept; write beside what it holds instead, e.g. --output {target / beside}"
            if found == "train" else
            f"{target}: expected a new folder or an earlier {kind} output to replace, found {WHAT.get(found, found)}, "
            "which is kept; choose another --output"
        )
    foreign = sorted(present - written - {MARKER})
    if foreign:
        raise IntentbalError(
            f"{target}: expected an earlier {kind} output to replace, found {_few(foreign)} in it that intentbal "
            "did not write there; move them out of the folder or choose another --output (nothing was deleted)"
        )
    _refuse_inputs(target, inputs)


def check_output_file(
    path: Path, *, suffixes: Sequence[str], inputs: Iterable[str | Path | None] = (), overwrite: bool = False
) -> None:
    """Fail early, before any long work, when ``path`` cannot take a new output file.

    Refused: a folder; a suffix outside ``suffixes`` (the format follows the suffix); one of
    ``inputs`` or a folder holding one; an existing file unless ``overwrite``; a parent that
    cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise IntentbalError(
            f"--output {path}: expected a file name, found a folder; pass a file in it, e.g. "
            f"--output {path / ('output' + suffixes[0])}"
        )
    if path.suffix.lower() not in suffixes:
        accepted = " or ".join(filter(None, [", ".join(suffixes[:-1]), suffixes[-1]]))
        raise IntentbalError(
            f"--output {path}: expected a file name ending in {accepted} (the format follows it), "
            f"found {path.suffix or 'no suffix'}; rename the output"
        )
    _refuse_inputs(path, inputs)
    if path.exists() and not overwrite:
        raise IntentbalError(
            f"--output {path}: expected a new file, found an existing one, which is kept; "
            "pass --overwrite to replace it, or choose another name"
        )
    existing = next(p for p in path.absolute().parents if p.exists())
    try:  # a probe in the nearest existing folder; nothing is created for good
        fd, probe = tempfile.mkstemp(prefix=".intentbal-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _write_error(path, exc) from None


def _refuse_inputs(target: Path, inputs: Iterable[str | Path | None]) -> None:
    """Refuse ``target`` when it is one of ``inputs`` or a folder holding one (through links too)."""
    if not target.exists():
        return
    where = target.resolve()
    for raw in inputs:
        path = _local(raw)
        if path is None:
            continue
        if where == path.resolve() or where in path.resolve().parents or os.path.samefile(target, path):
            raise IntentbalError(
                f"--output {target}: expected a destination apart from this command's inputs, found "
                f"{'the input' if where == path.resolve() else 'a folder holding the input'} {raw}, which is kept; "
                "choose another --output"
            )


def _local(raw: str | Path | None) -> Path | None:
    """The existing local path an input names (``PATH#SPLIT`` names ``PATH``), else ``None``."""
    if raw is None:
        return None
    path = Path(raw)
    if not path.exists() and "#" in str(raw):
        path = Path(str(raw).rpartition("#")[0])
    return path if path.exists() else None


def _made_by(folder: Path) -> tuple[str | None, set[str]]:
    """The kind of output ``folder`` is and the entries that output wrote; ``(None, set())`` when
    intentbal did not write it. Folders from before ``MARKER`` are recognised by their files."""
    try:
        doc = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        if isinstance(doc, dict) and isinstance(doc.get("kind"), str) and isinstance(doc.get("entries"), list):
            return doc["kind"], {str(e) for e in doc["entries"]}
    except (OSError, ValueError):
        pass
    present = {p.name for p in folder.iterdir()}
    if "state.pt" in present:
        kind = "checkpoint"
    elif present & {"model", "manifest.json", "train_metrics.json"}:
        kind = "train"
    elif "report.json" in present:
        try:
            kind = "cv" if "cv" in json.loads((folder / "report.json").read_text(encoding="utf-8")) else "evaluate"
        except (OSError, ValueError):
            return None, set()
    else:
        return None, set()
    return kind, LEGACY_ENTRIES[kind]


def _few(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _follow_umask(root: Path) -> None:
    """Give every folder and file under ``root`` (itself included) the mode the umask gives."""
    mask = _umask()
    for folder, _, files in os.walk(root):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o100
                os.chmod(path, (0o777 if executable else 0o666) & ~mask)


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
    if isinstance(exc, IsADirectoryError):
        return IntentbalError(f"{shown}: expected a file name for the output, found a folder; choose a file name")
    return IntentbalError(
        f"{shown}: could not write the output ({reason}); free disk space or choose a writable --output"
    )
