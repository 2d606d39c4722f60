"""ONNX export of a trained model folder, checked against PyTorch, and the ONNX Runtime session.

``export_onnx`` writes ``model.onnx`` into the folder, then compares ONNX Runtime's logits with
PyTorch's on a handful of sentences and writes the result to ``onnx.json``. ``onnx.json`` is
written last and only after a passing check: a folder is used through ONNX Runtime only when
it holds both files and the weights beside them are the ones that were exported.

Importing this module imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from intentbal.batching import encode, pad_arrays, pad_id_of
from intentbal.config import ModelConfig
from intentbal.errors import IntentbalError
from intentbal.loading import PICKLE_SUFFIXES, load_classifier, sha256_file
from intentbal.outputs import atomic_file, atomic_write_text, check_output_file, json_text
from intentbal.predict import Backend, Logits, torch_logits

ONNX_FILE = "model.onnx"
CHECK_FILE = "onnx.json"
OPSET = 20  # what torch 2.13's exporter picks; onnxruntime >= 1.17 runs it
INPUTS = ("input_ids", "attention_mask")
INSTALL_HINT = "pip install intentbal[onnx]"
WEIGHT_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)


# Support-bot sentences of very different lengths (one past any usual max_length), so the check
# covers padding, truncation, accents and a one-word input.
CHECK_TEXTS = (
    "where is my card?",
    "I still have not received the new card I ordered two weeks ago, what should I do now?",
    "refund",
    "Why was I charged an extra fee when I took cash out of an ATM abroad last weekend?",
    "can i top up with apple pay",
    "Hola, ¿puedo cambiar el PIN de mi tarjeta en un cajero automático?",
    "my transfer to a friend is still pending " * 12,
)


@dataclass(frozen=True)
class ExportResult:
    """Where the graph and its check went, and how far ONNX Runtime's logits were from PyTorch's."""

    path: Path
    check_path: Path
    max_abs_diff: float
    atol: float
    opset: int
    onnxruntime_version: str
    texts_checked: int


def export_onnx(
    model_dir: str | Path, *, output: str | Path | None = None, atol: float = 1e-4,
    config: ModelConfig | None = None,
) -> ExportResult:
    """Export ``model_dir`` (an intentbal model folder, either head) to ONNX and check it.

    Writes ``output`` (default ``model_dir/model.onnx``; dynamic batch and sequence axes, int64
    ``input_ids`` and ``attention_mask`` in, ``logits`` out) and then ``onnx.json`` beside it,
    each atomically. Raises :class:`IntentbalError` and leaves no new file when onnxruntime is
    missing, the exporter fails, or the largest absolute logit difference exceeds ``atol``.
    """
    model_dir = Path(model_dir)
    target = Path(output) if output is not None else model_dir / ONNX_FILE
    # a re-export replaces the earlier graph; anything but an .onnx file (the weights) never
    check_output_file(target, suffixes=(".onnx",), inputs=[model_dir], overwrite=True)
    ort = _require("onnx", "onnxscript", "onnxruntime")
    check_path = target.parent / CHECK_FILE
    config = config or ModelConfig()
    tokenizer, model, meta = load_classifier(model_dir, config)
    max_length = meta.get("max_length", config.max_length)
    with atomic_file(target) as tmp:
        _export_graph(model, tokenizer, tmp, max_length=max_length)
        diff = max_abs_diff(torch_logits(model), onnx_logits(session(tmp)), tokenizer, max_length=max_length)
        if not diff <= atol:  # NaN fails too
            raise IntentbalError(
                f"{target}: expected ONNX Runtime logits within {atol:g} of PyTorch's, found a difference of "
                f"{diff:.3g}; nothing was written: keep the torch backend, or pass a larger --atol if that "
                "difference is acceptable"
            )
        check_path.unlink(missing_ok=True)  # the old check must never describe the new file
    check = {"file": target.name, "max_abs_diff": diff, "atol": atol, "texts_checked": len(CHECK_TEXTS),
             "max_length": max_length, "opset": OPSET, "onnxruntime": ort.__version__,
             "torch": _version("torch"), "weights_sha256": weights_digest(model_dir)}
    atomic_write_text(check_path, json_text(check))
    return ExportResult(target, check_path, diff, atol, OPSET, ort.__version__, len(CHECK_TEXTS))


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
        _require("onnxruntime")
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
    ort = _require("onnxruntime")
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
            f"({_first_line(exc)}); "
            "export the model again with 'intentbal export', or use the torch backend"
        ) from exc


def onnx_logits(sess: Any) -> Logits:
    """``(input_ids, attention_mask) -> logits`` through an ONNX Runtime session."""

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return sess.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    return run


def max_abs_diff(expected: Logits, found: Logits, tokenizer: Any, *, max_length: int) -> float:
    """The largest absolute logit difference over :data:`CHECK_TEXTS`, run as one padded batch
    and one by one."""
    ids, _ = encode(tokenizer, CHECK_TEXTS, max_length)
    inputs = [pad_arrays(ids, pad_id_of(tokenizer))] + [pad_arrays([row], pad_id_of(tokenizer)) for row in ids]
    return max(float(np.abs(expected(*x).astype(np.float64) - found(*x)).max()) for x in inputs)


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


def _export_graph(model: Any, tokenizer: Any, path: Path, *, max_length: int) -> None:
    import torch

    ids, _ = encode(tokenizer, CHECK_TEXTS[:2], max_length)  # batch 2, two lengths: no size gets fixed
    example = tuple(torch.from_numpy(a) for a in pad_arrays(ids, pad_id_of(tokenizer)))
    axes = {0: "batch", 1: "sequence"}
    try:
        with _quiet_exporter():
            torch.onnx.export(_logits_only(model), example, str(path), dynamo=True, verbose=False,
                              external_data=False, opset_version=OPSET, input_names=list(INPUTS),
                              output_names=["logits"], dynamic_shapes={name: axes for name in INPUTS})
    except torch.onnx.errors.OnnxExporterError as exc:
        raise IntentbalError(
            f"{path.parent}: expected a model torch.onnx can export, found an exporter error ({_first_line(exc)}); "
            "keep the torch backend for this model"
        ) from exc


def _logits_only(model: Any) -> Any:
    """``model`` with the ONNX graph's signature: two tensors in, the logits tensor out."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    return LogitsOnly().eval()


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter warns about things that do not concern a user (torchvision, axis names)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _require(*packages: str) -> Any:
    """onnxruntime, once every package named is importable."""
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


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
