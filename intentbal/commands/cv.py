"""``intentbal cv``: repeated stratified K-fold of the recipe ``train`` ships, recall pooled over folds."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from intentbal.config import Config
from intentbal.data.inputs import (
    check_shared_intents,
    load_data,
    load_described,
    load_training,
    load_unlabeled,
    make_split,
    run_inputs,
)
from intentbal.data.profiling import profile_intents
from intentbal.data.splits import fold_assignment
from intentbal.errors import IntentbalError
from intentbal.evaluation.metrics import Report, evaluate_predictions
from intentbal.io.atomic import atomic_write_text, json_text
from intentbal.io.config_yaml import config_to_yaml
from intentbal.io.folders import atomic_dir, output_folder
from intentbal.model.memo import shared_encoder_outputs
from intentbal.reports.files import predictions_csv, write_report
from intentbal.reports.manifest import build_manifest
from intentbal.training.recipe import fit_evaluated

if TYPE_CHECKING:
    from intentbal.progress import Progress

log = logging.getLogger(__name__)


def cross_validate(
    config: Config, *, folds: int, repeats: int = 1, progress: Progress | None = None
) -> tuple[Report, int]:
    """Repeated stratified K-fold over ``data.train``; recall pooled over every held-out fold.

    Each fold's model is made by :func:`intentbal.training.recipe.fit_evaluated` from the other folds'
    rows exactly as ``train`` makes the model it reports on from ``data.train`` with a ``data.eval`` file:
    the same validation hold-out (or ``data.validation``) for tau, the same rebalancing, soup
    and seed (``seed + repeat``). Each intent's examples are spread over the folds from a random
    offset, so an intent with fewer examples than folds still has each example held out once,
    and is evaluated. Writes the pooled report, ``predictions.csv``, ``config.yaml`` and
    ``manifest.json`` to ``config.output_dir``; returns the report and the number of models.
    """
    if folds < 2 or repeats < 1:
        raise IntentbalError(f"--folds {folds} --repeats {repeats}: expected at least 2 folds and 1 repeat; "
                             "raise them")
    # every fold's fit starts from the same encoder: its outputs are computed once per row
    with output_folder(config.output_dir, kind="cv", inputs=run_inputs(config)) as out, shared_encoder_outputs():
        return _cross_validate(config.model_copy(update={"output_dir": out}), folds=folds, repeats=repeats,
                               progress=progress)


def _cross_validate(
    config: Config, *, folds: int, repeats: int, progress: Progress | None
) -> tuple[Report, int]:
    data = load_training(config, missing="no data to cross-validate: expected --train PATH or data.train in the "
                                         "config")
    validation = load_data(config, config.data.validation, "validation") if config.data.validation else None
    if validation is not None:
        check_shared_intents(data, validation, "validation", ignore=config.data.oos_label)
    pool = load_unlabeled(config, held=set(validation.texts) if validation else set())
    descriptions, _ = load_described(config, data)
    held_rows: list[int] = []
    predicted: list[str] = []
    confidence: list[float] = []
    taus: list[float] = []
    for repeat in range(repeats):
        fold_config = config.model_copy(update={"seed": config.seed + repeat})
        assignment = fold_assignment(data.intents, folds=folds, seed=config.seed + repeat)
        for fold in range(folds):
            held = [i for i, f in enumerate(assignment) if f == fold]
            if not held:
                continue
            log.info("fold %d/%d of repeat %d/%d: %d rows held out", fold + 1, folds, repeat + 1, repeats,
                     len(held))
            split = make_split(fold_config, data.subset(i for i, f in enumerate(assignment) if f != fold),
                               eval_data=data.subset(held), validation=validation)
            fitted = fit_evaluated(fold_config, split, unlabeled=_without(pool, split.held_texts()),
                                   descriptions=descriptions)
            pred, conf = fitted.classifier.predict([data.texts[i] for i in held])
            held_rows += held
            predicted += pred
            confidence += conf
            taus.append(fitted.adjustment.tau)
            if progress:
                progress("cv", len(taus), repeats * folds)
    gold = [data.intents[i] for i in held_rows]
    texts = [data.texts[i] for i in held_rows]
    e = config.evaluate
    report = evaluate_predictions(gold, predicted, train_counts=profile_intents(data.texts, data.intents).counts(),
                                  rare_max=config.profile.rare_max, frequent_min=config.profile.frequent_min,
                                  recall_threshold=e.recall_threshold, min_support=e.min_support)
    log.info("writing %s", config.output_dir)
    with atomic_dir(config.output_dir, kind="cv") as out:
        write_report(out, report, title=f"intentbal {folds}-fold cross-validation, {repeats} repeat(s)",
                     extra={"cv": {"folds": folds, "repeats": repeats, "models": len(taus), "taus": taus}})
        atomic_write_text(out / "predictions.csv", predictions_csv(texts, predicted, confidence, gold))
        atomic_write_text(out / "config.yaml", config_to_yaml(config))
        atomic_write_text(out / "manifest.json", json_text(build_manifest(config)))
    return report, len(taus)


def _without(pool: list[str] | None, held: set[str]) -> list[str] | None:
    """``pool`` without the ``held`` texts (a fold's eval and validation rows): never trained on."""
    return None if pool is None else [t for t in pool if t not in held]
