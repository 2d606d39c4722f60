"""``intentbal suggest``: for the intents that need examples, the unlabeled utterances most likely
theirs (the ranking is :mod:`intentbal.evaluation.suggestions`), written as a table to confirm and merge back."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intentbal.commands.audit import read_report
from intentbal.commands.evaluate import open_classifier
from intentbal.config import Config
from intentbal.data.inputs import load_data
from intentbal.errors import IntentbalError
from intentbal.evaluation.suggestions import (
    COLUMNS,
    MARGIN,
    PER_INTENT,
    Selection,
    Suggestion,
    SuggestResult,
    asked,
    from_counts,
    from_report,
    new_texts,
    rank_candidates,
    suggestion_rows,
)
from intentbal.io.folders import output_file
from intentbal.io.tables import TABLE_SUFFIXES, write_table

if TYPE_CHECKING:
    from intentbal.inference.backends import Backend
    from intentbal.progress import Progress

log = logging.getLogger(__name__)


def suggest_file(
    config: Config, *, model_dir: Path, unlabeled: Path, output: Path, report: Path | None = None,
    intents: Sequence[str] | None = None, per_intent: int = PER_INTENT, margin: float = MARGIN,
    backend: Backend = "auto", overwrite: bool = False, progress: Progress | None = None,
) -> SuggestResult:
    """Rank the texts of ``unlabeled`` for the intents that need examples and write them to
    ``output`` (.csv, .jsonl or .parquet by suffix; an existing file is replaced only with
    ``overwrite``, an input never), in ``COLUMNS`` (see :func:`rank_candidates`).

    The intents are ``intents`` when given; else those a report marks ``REPORT_REASONS``
    (``report``, or ``report.json`` beside ``model_dir`` in its run folder); else those the model
    was trained on at most ``profile.rare_max`` examples of (its ``intentbal.json``). The pool is
    :func:`new_texts` of the file's ``data.text_column``. ``progress("predict", done, total)``
    follows the prediction; with no intent selected nothing is predicted and the table is empty.
    """
    if per_intent < 1 or not 0 <= margin <= 1:
        raise IntentbalError(f"expected --per-intent of at least 1 and --margin from 0 to 1, "
                             f"found {per_intent} and {margin}; change them")
    if intents:
        report = None  # named intents need no report
    elif report is None and (beside := Path(model_dir).parent / "report.json").is_file():
        report = beside
    with output_file(output, suffixes=TABLE_SUFFIXES, inputs=[model_dir, unlabeled, report, config.source],
                     overwrite=overwrite) as output:
        return _suggest(config, model_dir=model_dir, unlabeled=unlabeled, output=output, report=report,
                        intents=intents, per_intent=per_intent, margin=margin, backend=backend, progress=progress)


def _suggest(
    config: Config, *, model_dir: Path, unlabeled: Path, output: Path, report: Path | None,
    intents: Sequence[str] | None, per_intent: int, margin: float, backend: Backend, progress: Progress | None,
) -> SuggestResult:
    doc = read_report(report) if report is not None else None
    clf = open_classifier(config, model_dir, backend)
    counts = clf.record.train_counts if clf.record is not None else None
    selection = _select(config, counts, clf.intents, model_dir=model_dir, report=report, doc=doc, intents=intents)
    data = load_data(config, unlabeled, "train", require_intent=False)
    hashes = clf.record.train_text_sha1 if clf.record is not None else None
    pool = new_texts(data.texts, train_hashes=hashes.model_dump() if hashes is not None else None)
    if not pool.texts:
        raise IntentbalError(
            f"{unlabeled}: expected texts the model was not trained on, found only its {pool.in_training} training "
            f"text(s) and {pool.duplicates} repeat(s); pass unlabelled utterances such as a chat log export"
        )
    suggestions: list[Suggestion] = []
    if selection.reasons:
        log.info("ranking %d new texts for %d intent(s)", len(pool.texts), len(selection.reasons))
        probs = clf.proba(pool.texts, progress=progress)
        suggestions = rank_candidates(probs, clf.intents, list(selection.reasons), per_intent=per_intent,
                                      margin=margin)
    log.info("writing %s", output)
    write_table(output, suggestion_rows(suggestions, selection, pool.texts), columns=COLUMNS)
    return SuggestResult(selection=selection, pool=pool, pool_rows=len(data), suggestions=suggestions,
                         truncated=clf.truncated)


def _select(
    config: Config, counts: Mapping[str, int] | None, known: Sequence[str], *, model_dir: Path,
    report: Path | None, doc: Mapping[str, Any] | None, intents: Sequence[str] | None,
) -> Selection:
    if intents:
        return asked(intents, known, model=str(model_dir))
    if doc is not None:
        return from_report(doc, known, source=str(report))
    if not counts:
        raise IntentbalError(
            f"model {model_dir}: expected a report to choose intents by (report.json beside the model in its run "
            "folder, or --report PATH) or the training counts in its intentbal.json, found neither; "
            "pass --report PATH or --intents NAME,NAME"
        )
    return from_counts(counts, known, rare_max=config.profile.rare_max,
                       source=f"the training counts in {Path(model_dir) / 'intentbal.json'}")
