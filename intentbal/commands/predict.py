"""``intentbal predict``: a model's answers for every row of a file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from intentbal.commands.evaluate import open_classifier
from intentbal.config import Config
from intentbal.data.inputs import load_data
from intentbal.errors import IntentbalError
from intentbal.io.folders import output_file
from intentbal.io.tables import TABLE_SUFFIXES, prediction_columns, prediction_rows, write_table

if TYPE_CHECKING:
    from intentbal.inference.backends import Backend
    from intentbal.progress import Progress

log = logging.getLogger(__name__)

def predict_file(
    config: Config, *, model_dir: Path, input_path: Path, output: Path, backend: Backend = "auto",
    overwrite: bool = False, top_k: int | None = None, fallback_threshold: float | None = None,
    progress: Progress | None = None,
) -> int:
    """Write ``text,prediction,confidence`` (and ``intent`` when the input has it) to ``output``,
    in the format its suffix names (.csv, .jsonl or .parquet); an existing file is replaced
    only with ``overwrite``, an input never.

    ``prediction`` is the fallback intent under the fallback threshold: ``fallback_threshold``,
    else ``evaluate.fallback_threshold``, else the one saved with the model, if any. With
    ``top_k``, each row also ranks the ``top_k`` most likely intents (see
    :func:`intentbal.io.tables.prediction_rows`). Returns the number of rows.
    """
    if top_k is not None and top_k < 1:
        raise IntentbalError(f"--top-k: expected a whole number of at least 1, found {top_k}")
    with output_file(output, suffixes=TABLE_SUFFIXES, inputs=[model_dir, input_path, config.source],
                     overwrite=overwrite) as output:
        return _predict(config, model_dir=model_dir, input_path=input_path, output=output, backend=backend,
                        top_k=top_k, fallback_threshold=fallback_threshold, progress=progress)


def _predict(
    config: Config, *, model_dir: Path, input_path: Path, output: Path, backend: Backend, top_k: int | None,
    fallback_threshold: float | None, progress: Progress | None,
) -> int:
    clf = open_classifier(config, model_dir, backend)
    threshold = fallback_threshold if fallback_threshold is not None else config.evaluate.fallback_threshold
    if threshold is not None:
        if clf.record is None or clf.record.fallback is None:  # a saved threshold keeps its intent's name
            clf.fallback_intent = config.evaluate.fallback_intent
        clf.fallback_threshold = threshold
    data = load_data(config, input_path, "test", require_intent=False)
    log.info("predicting %d rows of %s", len(data), input_path)
    probs = clf.proba(data.texts, progress=progress)
    predicted, confidence = clf.answer(probs)
    gold = data.intents if data.labelled else None
    rows = prediction_rows(data.texts, predicted, confidence, gold=gold,
                           rankings=clf.ranking(probs, top_k) if top_k else None,
                           flat=output.suffix.lower() != ".jsonl")
    log.info("writing %s", output)
    write_table(output, rows, columns=list(rows[0]) if rows else prediction_columns(labelled=gold is not None))
    return len(data)
