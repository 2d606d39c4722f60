"""Backends that turn token ids into logits: PyTorch and ONNX Runtime.

A backend is a :data:`Logits` function, padded ``(input_ids, attention_mask)`` in, logits out,
all NumPy; :func:`run_batches` feeds it length-sorted batches and returns probabilities.
ONNX Runtime runs a folder's ``model.onnx`` only once ``onnx.json`` (written by
:func:`intentbal.inference.export.export_onnx`) shows it was exported from the weights beside it.

Importing this module imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from intentbal.errors import IntentbalError, first_line
from intentbal.io.digests import sha256_file
from intentbal.model.encoding import length_sorted, pad_arrays
from intentbal.model.loading import PICKLE_SUFFIXES
from intentbal.progress import Progress

Backend = Literal["auto", "torch", "onnx"]
Logits = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (input_ids, attention_mask) -> logits, all NumPy

ONNX_FILE = "model.onnx"
CHECK_FILE = "onnx.json"
INSTALL_HINT = "pip install intentbal[onnx]"
WEIGHT_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)


def choose_backend(model_dir: str | Path, requested: Backend) -> Literal["torch", "onnx"]:
    """The backend that runs ``model_dir``: ``"auto"`` is ONNX Runtime when the folder holds a
    checked export (``model.onnx`` and ``onnx.json``) and onnxruntime is installed, else torch."""
    missing = [name for name in (ONNX_FILE, CHECK_FILE) if not (Path(model_dir) / name).is_file()]
    if requested == "torch":
        return "torch"
    if requested == "onnx":
        if missing:
            raise IntentbalError(
                f"model {model_dir}: expected {ONNX_FILE} and {CHECK_FILE} for the onnx backend, found no "
                f"{' and no '.join(missing)}; run 'intentbal export --model {model_dir}' first, "
                "or use the torch backend"
            )
        require("onnxruntime")
        return "onnx"
    if requested == "auto":
        return "onnx" if not missing and importlib.util.find_spec("onnxruntime") is not None else "torch"
    raise IntentbalError(f"backend: expected 'auto', 'torch' or 'onnx', found {requested!r}")


def open_session(model_dir: str | Path) -> Any:
    """An ONNX Runtime session on ``model_dir/model.onnx``, once ``onnx.json`` shows it was
    exported from the weights now in the folder (a folder without weights is not checked)."""
    folder = Path(model_dir)
    again = f"run 'intentbal export --model {model_dir}' again"
    try:
        check = json.loads((folder / CHECK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IntentbalError(f"{folder / CHECK_FILE}: expected the check of an export, found it unreadable "
                             f"({type(exc).__name__}); {again}") from exc
    weights = weights_digest(folder)
    if weights is not None and check.get("weights_sha256") != weights:
        raise IntentbalError(
            f"model {model_dir}: expected {ONNX_FILE} exported from the weights beside it, found weights "
            f"changed since the export; {again}"
        )
    return session(folder / ONNX_FILE)


def session(path: Path) -> Any:
    """An ONNX Runtime CPU session tuned for small-batch inference: one thread per physical
    core this process may use, every graph optimisation."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = physical_cores()
    options.inter_op_num_threads = 1  # the graph is one chain: parallel branches buy nothing
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: library code does not print
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors share no base class but Exception
        raise IntentbalError(
            f"{path}: expected a graph onnxruntime {ort.__version__} can load, found an error "
            f"({first_line(exc)}); "
            "export the model again with 'intentbal export', or use the torch backend"
        ) from exc


def onnx_logits(sess: Any) -> Logits:
    """``(input_ids, attention_mask) -> logits`` through an ONNX Runtime session."""

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return sess.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    return run


def torch_logits(model: Any, *, bf16: bool = False) -> Logits:
    """``(input_ids, attention_mask) -> logits`` (float32 NumPy) through a torch model, in eval mode;
    with ``bf16`` under bf16 autocast (the model's own head and pooling keep fp32 where it says so)."""
    import torch

    model.eval()
    device = next(model.parameters()).device

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(input_ids=torch.from_numpy(input_ids).to(device),
                        attention_mask=torch.from_numpy(attention_mask).to(device)).logits
        return out.float().cpu().numpy()

    return run


def run_batches(
    ids: list[list[int]], logits: Logits, *, n_labels: int, pad_id: int, batch_size: int,
    progress: Progress | None = None,
) -> np.ndarray:
    """Softmax of ``logits(input_ids, attention_mask)`` for each row of token ids.

    Rows are run in length order (little padding) and returned in input order; a single row
    goes straight through, with nothing to sort or pad. ``progress("predict", done, total)``
    follows each batch.
    """
    if len(ids) == 1:
        input_ids = np.array(ids, dtype=np.int64)
        return softmax(logits(input_ids, np.ones_like(input_ids)))
    out = np.zeros((len(ids), n_labels), dtype=np.float32)
    done = 0
    for chunk in length_sorted(ids, batch_size):
        out[chunk] = softmax(logits(*pad_arrays([ids[i] for i in chunk], pad_id)))
        done += len(chunk)
        if progress is not None:
            progress("predict", done, len(ids))
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32."""
    shifted = np.exp(logits.astype(np.float32) - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def weights_digest(model_dir: str | Path) -> str | None:
    """SHA-256 over the folder's weight files, to tell whether ``model.onnx`` is theirs; None without any."""
    files = sorted(p for p in Path(model_dir).iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if not files:
        return None
    return hashlib.sha256("".join(f"{p.name}:{sha256_file(p)}\n" for p in files).encode()).hexdigest()


def physical_cores() -> int:
    """Physical cores this process may run on (SMT siblings count once); at least 1."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text(), (topology / "core_id").read_text()))
        except OSError:  # no sysfs (not Linux, or hidden): count the CPU itself
            cores.add(("cpu", str(cpu)))
    return max(1, len(cores))


def require(*packages: str) -> Any:
    """onnxruntime, once every package named is importable; an :class:`IntentbalError` naming
    the missing ones and the extra that installs them otherwise."""
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        present = [p for p in packages if p not in missing]
        found = f"only {', '.join(present)} installed" if present else "none of them installed"
        raise IntentbalError(
            f"ONNX backend: expected the package(s) {', '.join(packages)} installed, found {found} "
            f"(missing: {', '.join(missing)}); {INSTALL_HINT}"
        )
    import onnxruntime

    return onnxruntime
