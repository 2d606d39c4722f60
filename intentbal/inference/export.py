"""ONNX export of a trained model folder, checked against PyTorch.

``export_onnx`` writes ``model.onnx`` into the folder, then compares ONNX Runtime's logits with
PyTorch's on a handful of sentences and writes the result to ``onnx.json``. ``onnx.json`` is
written last and only after a passing check: a folder is used through ONNX Runtime
(:mod:`intentbal.inference.backends`) only when it holds both files and the weights beside them are the
ones that were exported.

Importing this module imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from intentbal.config import ModelConfig
from intentbal.errors import IntentbalError, first_line
from intentbal.inference.backends import (
    CHECK_FILE,
    ONNX_FILE,
    Logits,
    onnx_logits,
    require,
    session,
    torch_logits,
    weights_digest,
)
from intentbal.io.atomic import atomic_file, atomic_write_text, json_text
from intentbal.io.folders import check_output_file
from intentbal.model.encoding import encode, pad_arrays, pad_id_of
from intentbal.model.loading import load_classifier

OPSET = 20  # what torch 2.13's exporter picks; onnxruntime >= 1.17 runs it
INPUTS = ("input_ids", "attention_mask")


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


@dataclass(frozen=True, kw_only=True)
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
    ort = require("onnx", "onnxscript", "onnxruntime")
    check_path = target.parent / CHECK_FILE
    config = config or ModelConfig()
    tokenizer, model, record = load_classifier(model_dir, config)
    max_length = record.max_length if record is not None else config.max_length
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
    return ExportResult(path=target, check_path=check_path, max_abs_diff=diff, atol=atol, opset=OPSET,
                        onnxruntime_version=ort.__version__, texts_checked=len(CHECK_TEXTS))


def max_abs_diff(expected: Logits, found: Logits, tokenizer: Any, *, max_length: int) -> float:
    """The largest absolute logit difference over :data:`CHECK_TEXTS`, run as one padded batch
    and one by one."""
    ids, _ = encode(tokenizer, CHECK_TEXTS, max_length)
    inputs = [pad_arrays(ids, pad_id_of(tokenizer))] + [pad_arrays([row], pad_id_of(tokenizer)) for row in ids]
    return max(float(np.abs(expected(*x).astype(np.float64) - found(*x)).max()) for x in inputs)


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
            f"{path.parent}: expected a model torch.onnx can export, found an exporter error ({first_line(exc)}); "
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



def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
