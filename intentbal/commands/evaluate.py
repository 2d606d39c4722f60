"""``intentbal evaluate``: a per-intent report of a trained model on labelled data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from intentbal.config import Config
from intentbal.data.inputs import few, load_data
from intentbal.data.overlap import overlap_with_hashes
from intentbal.errors import IntentbalError
from intentbal.evaluation.metrics import Report
from intentbal.evaluation.scoring import score
from intentbal.io.atomic import atomic_write_text
from intentbal.io.folders import atomic_dir, output_folder
from intentbal.reports.card import card_text
from intentbal.reports.files import write_scores

if TYPE_CHECKING:
    from intentbal.inference.backends import Backend
    from intentbal.inference.classifier import IntentClassifier
    from intentbal.progress import Progress

log = logging.getLogger(__name__)

def evaluate_model(
    config: Config, *, model_dir: Path, data: Path, output: Path, backend: Backend = "auto",
    update_card: bool = False, progress: Progress | None = None,
) -> Report:
    """Evaluate a trained model folder on ``data``; write the report files to ``output``.

    With ``update_card``, also rewrite the model card ``model_dir/README.md`` from this evaluation
    (nothing else in ``model_dir`` changes). ``output`` must be new, empty or an earlier evaluate
    report (see :func:`intentbal.io.folders.check_output_dir`), never a train run or a folder holding
    an input.
    ``progress("predict", done, total)`` follows the prediction of ``data``.
    """
    with output_folder(output, kind="evaluate", inputs=[model_dir, data, config.data.validation, config.source]) \
            as output:
        return _evaluate(config, model_dir=model_dir, data=data, output=output, backend=backend,
                         update_card=update_card, progress=progress)


def _evaluate(
    config: Config, *, model_dir: Path, data: Path, output: Path, backend: Backend, update_card: bool,
    progress: Progress | None,
) -> Report:
    clf = open_classifier(config, model_dir, backend)
    record = clf.record
    if update_card and record is None:
        raise IntentbalError(f"model {model_dir}: expected an intentbal model folder (with intentbal.json) for "
                             "--update-card, found none; evaluate it without --update-card")
    eval_data = load_data(config, data, "eval")
    known = set(clf.intents)
    if not known & set(eval_data.intents):
        raise IntentbalError(
            f"model {model_dir}: its intents ({few(known)}) share none with {data} ({few(set(eval_data.intents))}); "
            "pass the model trained for this data, or the right --set data.intent_column"
        )
    validation = load_data(config, config.data.validation, "validation") if config.data.validation else None
    log.info("scoring %d rows of %s", len(eval_data), data)
    counts = record.train_counts if record is not None else {}
    hashes = record.train_text_sha1 if record is not None else None  # absent in folders saved before 0.1
    overlap = overlap_with_hashes(hashes.model_dump(), eval_data.texts, eval_data.intents) if hashes else None
    scores = score(config, clf, eval_data, train_counts=counts,
                   augmented_counts=(record.augmented_counts if record is not None else {}) or counts,
                   pseudo_counts=record.pseudo_counts if record is not None else None, validation=validation,
                   overlap=overlap, progress=progress)
    log.info("writing %s", output)
    with atomic_dir(output, kind="evaluate") as out:
        write_scores(config, out, scores)
        if update_card and record is not None:  # inside the block: a card that cannot be written leaves no report
            atomic_write_text(Path(model_dir) / "README.md",
                              card_text(config, record, scores.report, Path(data).name, model_dir=Path(model_dir)))
    return scores.report


def open_classifier(config: Config, model_dir: Path, backend: Backend = "auto") -> IntentClassifier:
    """A saved model folder, with the config's model settings and prediction batch size."""
    from intentbal.inference.classifier import IntentClassifier

    clf = IntentClassifier.load(model_dir, config=config.model, batch_size=config.evaluate.batch_size,
                                backend=backend)
    log.info("loaded %s: %d intents", model_dir, len(clf.intents))
    return clf
