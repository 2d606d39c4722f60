"""Outputs: atomic, checked, locked and recoverable, as git and SQLite treat their files.

- **Atomic.** A file or folder is built beside its destination under a hidden name
  (``.NAME.partial-PID-...``) and renamed into place when complete, so a reader never sees half
  of one. A folder replaces an earlier one in two renames (the earlier one waits as
  ``.NAME.old-PID`` until the new one is in place); SIGINT and SIGTERM wait until both are done.
- **Checked.** Before any long work, a destination is refused when it is an input, holds one,
  or is a folder holding anything (at any depth) that an earlier intentbal output of the same
  kind did not write.
- **Locked.** While a command writes a destination, ``.NAME.lock`` beside it names the process;
  a second command refuses that destination until the first ends.
- **Recoverable.** Each command first mends what an interrupted one left beside its destination:
  a lock whose process is gone, a partial write, an earlier output still hidden as ``.old``
  (restored when the new one never arrived, removed when it did). Each repair is logged.

A symbolic link given as a destination is followed: its target is written, the link is kept.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from intentbal.errors import IntentbalError
from intentbal.io.atomic import as_write_error, current_umask, json_text, resolve_output, signals_deferred, write_error

log = logging.getLogger(__name__)

MARKER = "intentbal-output.json"  # in every output folder: what wrote it, and every entry it wrote


MARKER_FORMAT = 2  # 2: "entries" lists every file and folder at every depth; before: the top level only


# What each kind of output folder held before folders listed every entry, to recognise them:
# the top level, then the patterns of the files intentbal wrote one level down.
LEGACY_ENTRIES = {
    "train": {"model", "config.yaml", "manifest.json", "profile.json", "augmentation.jsonl", "train_metrics.json",
              "report.json", "report.md", "per_intent.csv", "report.html", "plots", "fallback_curve.json",
              "predictions.csv", "pseudo_labels.jsonl"},
    "evaluate": {"report.json", "report.md", "per_intent.csv", "report.html", "plots", "fallback_curve.json",
                 "predictions.csv"},
    "cv": {"report.json", "report.md", "per_intent.csv", "predictions.csv", "config.yaml", "manifest.json"},
    "checkpoint": {"model.safetensors", "state.pt"},
}


LEGACY_NESTED = {"model": ("*.json", "*.safetensors", "*.txt", "*.model", "modeling.py", "README.md", "model.onnx"),
                 "plots": ("*.png",)}


# Written into a train run's model folder after the run, by intentbal export: replaced with the model.
LATER_ENTRIES = {"train": {"model/model.onnx", "model/onnx.json"}}


WHAT = {"train": "a train run", "evaluate": "an evaluate or audit report", "cv": "a cv report",
        "checkpoint": "a training checkpoint"}


LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<what>partial|old)-(?P<pid>\d+)(?:-.*)?$")


_held: dict[Path, int] = {}  # destinations this process has locked, and how many times


_held_lock = threading.Lock()


@contextmanager
def output_folder(
    target: Path, *, kind: str, inputs: Iterable[str | Path | None] = (), writer: bool = True
) -> Iterator[Path]:
    """Hold the output folder ``target`` for one command: the folder to write (a link's target),
    locked, mended and checked (:func:`check_output_dir`) before the caller's work begins. Under a
    launcher, the processes that will not write (``writer`` false) only check it."""
    real = resolve_output(target)
    if not writer:
        check_output_dir(real, kind=kind, inputs=inputs)
        yield real
        return
    with _locked(real):
        recover(real)
        check_output_dir(real, kind=kind, inputs=inputs)
        yield real


@contextmanager
def output_file(
    path: Path, *, suffixes: Sequence[str], inputs: Iterable[str | Path | None] = (), overwrite: bool = False
) -> Iterator[Path]:
    """:func:`output_folder` for one output file (:func:`check_output_file`)."""
    real = resolve_output(path)
    with _locked(real):
        recover(real)
        check_output_file(real, suffixes=suffixes, inputs=inputs, overwrite=overwrite)
        yield real


def lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    """``.NAME.lock`` beside ``target`` while the block runs. Refused while another live process
    holds it; a lock whose process is gone is removed. Re-entrant within a process."""
    key = Path(os.path.abspath(target))
    with _held_lock:
        if _held.get(key):
            _held[key] += 1
            mine = True
        else:
            mine = False
    made = [] if mine else _acquire(target)
    if not mine:
        with _held_lock:
            _held[key] = 1
    try:
        yield
    finally:
        with _held_lock:
            _held[key] -= 1
            last = _held[key] == 0
            if last:
                del _held[key]
        if last:
            lock_path(target).unlink(missing_ok=True)
            _unmake(made)


def _unmake(folders: list[Path]) -> None:
    """Remove the folders a lock needed, deepest first, where nothing else was put in them."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _acquire(target: Path) -> list[Path]:
    """Take the lock; returns the folders made to hold it (removed with the lock when still empty)."""
    path = lock_path(target)
    made = [p for p in [path.parent.absolute(), *path.parent.absolute().parents] if not p.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(target, exc) from exc
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                _break_stale_lock(path, target)
            except IntentbalError:
                _unmake(made)
                raise
            continue
        except OSError as exc:
            _unmake(made)
            raise write_error(target, exc) from exc
        try:
            with os.fdopen(fd, "w") as f:
                f.write(record)
        except OSError as exc:  # a full disk
            path.unlink(missing_ok=True)
            _unmake(made)
            raise write_error(target, exc) from exc
        return made
    _unmake(made)
    raise IntentbalError(f"{path}: expected to lock the output, found the lock taken again and again; "
                         "wait for the other intentbal command to end, or choose another --output")


def _break_stale_lock(path: Path, target: Path) -> None:
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
        pid, host = int(owner["pid"]), str(owner.get("host", ""))
    except (OSError, ValueError, KeyError, TypeError):
        pid, host = -1, socket.gethostname()  # half-written by a process killed while locking
    if host == socket.gethostname() and (pid < 0 or not _alive(pid)):
        path.unlink(missing_ok=True)
        log.warning("removed %s, the lock of an interrupted intentbal command (process %s is gone)", path,
                    pid if pid >= 0 else "unknown")
        return
    where = f"process {pid}" + ("" if host == socket.gethostname() else f" on {host}")
    raise IntentbalError(
        f"{target}: expected an output no other command is writing, found it locked by intentbal {where} "
        f"({path}); wait for that command to end, or choose another --output"
    )


def recover(target: Path) -> list[str]:
    """Mend what interrupted commands left beside ``target`` (call with ``target`` locked): remove
    partial writes of processes that are gone, and restore an earlier output hidden as ``.old``
    when nothing replaced it (else remove it). Returns (and logs) one line per repair."""
    parent = target.parent
    if not parent.is_dir():
        return []
    done = []
    for entry in sorted(parent.iterdir()):
        m = LEFTOVER.match(entry.name)
        if m is None or m["name"] != target.name:
            continue
        pid = int(m["pid"])
        if pid != os.getpid() and _alive(pid):
            continue
        if m["what"] == "old" and not os.path.lexists(target):
            os.replace(entry, target)
            done.append(f"restored {target} from {entry.name}, where an interrupted command had moved it")
        else:
            what = ("the earlier output an interrupted command had already replaced" if m["what"] == "old"
                    else "the unfinished output of an interrupted command")
            _remove(entry)
            done.append(f"removed {entry}, {what}")
    for line in done:
        log.warning(line)
    return done


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(target: Path, *, kind: str) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; move it into place on success.

    ``kind`` names what writes the folder (``train``, ``evaluate``, ``cv``, ``checkpoint``); it is
    recorded with every entry written, at every depth, in ``MARKER``. A previous ``target`` is
    replaced only once the new one is complete, and only as :func:`check_output_dir` allows. Every
    file and folder gets the permissions the umask gives (some writers, such as safetensors',
    create 0600 files). On any error or signal the temporary folder is removed, so a crash never
    leaves a folder that looks finished; a killed process's leftovers are mended by :func:`recover`.
    """
    target = resolve_output(Path(target))
    recover(target)
    check_output_dir(target, kind=kind)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise write_error(target, exc) from exc
    try:
        yield tmp
        entries = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*"))
        (tmp / MARKER).write_text(json_text({"kind": kind, "format": MARKER_FORMAT, "entries": entries}),
                                  encoding="utf-8")
        _follow_umask(tmp)
        check_output_dir(target, kind=kind)  # the folder may have changed during the long work
        _swap_into_place(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        error = as_write_error(target, exc)
        if error is not None:
            raise error from exc
        raise


def check_output_dir(target: Path, *, kind: str, inputs: Iterable[str | Path | None] = ()) -> None:
    """Fail early, before any long work, when ``target`` cannot become an output folder of ``kind``.

    Refused: a file; a folder that is, or holds, one of ``inputs`` (the data, config and model
    paths of this run); a folder that is neither empty nor an earlier output of the same ``kind``;
    an earlier output holding anything, at any depth, that it did not write; a parent that cannot
    be written.
    """
    target = resolve_output(Path(target))
    if not target.exists():
        _probe(target)
        return
    if not target.is_dir():
        raise IntentbalError(f"{target}: expected a folder for the output, found a file; choose another --output")
    if not any(target.iterdir()):
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
    foreign = _foreign(target, written | LATER_ENTRIES.get(kind, set()))
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
    path = resolve_output(Path(path))
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
    _probe(path)


def _probe(target: Path) -> None:
    """Fail when nothing can be created where ``target`` would go; nothing is created for good."""
    existing = next(p for p in target.absolute().parents if p.exists())
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".intentbal-probe-{os.getpid()}-", dir=existing))
    except OSError as exc:
        raise write_error(target, exc) from exc


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
    intentbal did not write it. Folders from before ``MARKER`` are recognised by their files, and
    markers from before ``MARKER_FORMAT`` 2 listed only the top level: then the files intentbal
    writes one level down (``LEGACY_NESTED``) count as written."""
    try:
        doc = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        if isinstance(doc, dict) and isinstance(doc.get("kind"), str) and isinstance(doc.get("entries"), list):
            entries = {str(e) for e in doc["entries"]}
            return doc["kind"], entries if doc.get("format") == MARKER_FORMAT else entries | _legacy_nested(folder)
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
    return kind, LEGACY_ENTRIES[kind] | _legacy_nested(folder)


def _legacy_nested(folder: Path) -> set[str]:
    found = set()
    for sub, patterns in LEGACY_NESTED.items():
        if (folder / sub).is_dir():
            found |= {f"{sub}/{p.name}" for p in (folder / sub).iterdir()
                      if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in patterns)}
    return found


def _foreign(folder: Path, written: set[str]) -> list[str]:
    """Entries under ``folder`` (at any depth, top-most first) that are not in ``written``."""
    foreign: list[str] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel == MARKER or rel in written or any(rel.startswith(f + "/") for f in foreign):
            continue
        foreign.append(rel)
    return foreign


def _few(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _follow_umask(root: Path) -> None:
    """Give every folder and file under ``root`` (itself included) the mode the umask gives."""
    mask = current_umask()
    for folder, _, files in os.walk(root):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o100
                os.chmod(path, (0o777 if executable else 0o666) & ~mask)


def _swap_into_place(tmp: Path, target: Path) -> None:
    """``tmp`` becomes ``target``; an earlier ``target`` waits as ``.NAME.old-PID`` between the two
    renames, which no SIGINT or SIGTERM can separate (:func:`recover` mends a SIGKILL there)."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    with signals_deferred():
        os.replace(target, old)
        os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
