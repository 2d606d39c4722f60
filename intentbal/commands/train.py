"""``intentbal train``: split, fit the recipe, report on held-out rows, refit on every row, save.

The phases, in order: check the output folder; load and split the data
(:func:`intentbal.data.inputs.load_split`); fit the evaluated model
(:func:`intentbal.training.recipe.fit`); refit on every labelled row with the same choices when rows
were held out (``train.refit``); score the evaluated model on the eval rows; write the run
folder in one atomic step.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import intentbal
from intentbal.commands.augment import AUGMENT_COLUMNS, augmented_records
from intentbal.config import Config, config_to_yaml
from intentbal.data.inputs import Split, load_described, load_split, load_unlabeled, profile_of, run_inputs
from intentbal.data.overlap import text_hashes, train_eval_overlap
from intentbal.data.profiling import Profile
from intentbal.data.types import IntentData
from intentbal.errors import IntentbalError, TrainingDiverged
from intentbal.evaluation.fallback import ThresholdSource
from intentbal.evaluation.metrics import Report
from intentbal.evaluation.scoring import Scores, choose_fallback, score
from intentbal.io.atomic import atomic_write_text, json_text
from intentbal.io.folders import atomic_dir, output_folder
from intentbal.io.tables import write_table
from intentbal.model.adjustment import Adjustment
from intentbal.progress import Progress, suffixed
from intentbal.rebalance.augmentation import AugmentResult
from intentbal.reports.card import card_text, recipe
from intentbal.reports.files import write_scores
from intentbal.training.recipe import FitMetrics, Fitted, fit

log = logging.getLogger(__name__)

PSEUDO_COLUMNS = ["text", "intent", "confidence"]


@dataclass(frozen=True)
class RefitNote:
    """The shipped model was refit on every labelled row after the report was made."""

    rows: int  # every labelled row the shipped model trained on
    held_out_rows: int  # rows the evaluated (reported) model did not train on
    validation_rows: int = 0  # of them, rows of the validation file

    def to_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "held_out_rows": self.held_out_rows, "validation_rows": self.validation_rows,
                "reported_on": "model trained without the held-out rows"}


@dataclass(frozen=True)
class SavedFallback:
    """The fallback threshold saved with the model, where it was chosen, and the intent it answers."""

    threshold: float
    chosen_on: ThresholdSource
    intent: str

    def to_dict(self) -> dict[str, object]:
        return {"threshold": self.threshold, "chosen_on": self.chosen_on, "intent": self.intent}


@dataclass(frozen=True)
class TrainMetrics:
    """``train_metrics.json``: the shipped fit and, with a refit, the evaluated one."""

    shipped: FitMetrics
    evaluated: FitMetrics | None
    processes: int

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.shipped.to_dict(), "processes": self.processes,
                               "refit": self.evaluated is not None}
        if self.evaluated is not None:
            out["evaluated_fit"] = self.evaluated.to_dict()
        return out


@dataclass(frozen=True)
class TrainRun:
    """What ``train_run`` wrote and found."""

    output_dir: Path
    profile: Profile
    augmentation: AugmentResult | None  # of the evaluated model's rows
    report: Report | None  # None without eval rows
    metrics: TrainMetrics
    warnings: list[str]
    adjustment: Adjustment  # the shipped model's
    refit: RefitNote | None = None
    fallback: SavedFallback | None = None
    pseudo: dict[str, int] = field(default_factory=dict)  # unlabeled utterances trained on, per intent
    reported_adjustment: Adjustment | None = None  # the model reported on, when a refit ships another


def train_run(config: Config, *, progress: Progress | None = None, resume: bool = False) -> TrainRun:
    """Profile, augment, fine-tune and evaluate; write everything to ``config.output_dir``.

    The folder appears only when complete: ``model/`` (a standard Hugging Face folder),
    ``config.yaml``, ``manifest.json``, ``profile.json``, ``augmentation.jsonl``,
    ``train_metrics.json`` and, when there is eval data, ``report.json``, ``report.md``,
    ``per_intent.csv``, ``predictions.csv``, ``fallback_curve.json``, ``report.html`` and
    ``plots/``. Checkpoints go to a hidden folder beside
    it, which ``resume=True`` continues from and a finished run removes.

    When rows were held out of the evaluated model's training (for eval or validation) and
    ``train.refit`` is not "off", the fallback threshold and the report come from the model trained
    without them, and ``model/`` holds a refit (same recipe and seed) on :func:`refit_data`'s rows:
    every row of ``data.train`` and, with "all", the ``data.validation`` file's rows of training
    intents. Its tau is chosen for it on the validation file when it does not train on it, else it
    is the evaluated model's.
    With ``data.unlabeled`` the refit is self-trained too, by a teacher refit on every row: the
    rarest intents lose half their examples to the hold-outs, so the evaluated teacher labels
    the pool for them worst.
    """
    from intentbal.training import distributed

    with output_folder(config.output_dir, kind="train", inputs=run_inputs(config), writer=distributed.is_main()) \
            as out:
        return _train_run(config.model_copy(update={"output_dir": out}), progress=progress, resume=resume)


def _train_run(config: Config, *, progress: Progress | None, resume: bool) -> TrainRun:
    from intentbal.training import distributed
    from intentbal.training.results import check_trainable

    distributed.setup()
    split = load_split(config)
    check_trainable(split.train)
    profile = profile_of(config, split.train, split.eval.intents if split.eval else ())
    checkpoints = checkpoint_dir(config.output_dir)
    _check_resume(config, checkpoints, resume=resume)
    rows = refit_data(config, split)
    refitting = config.train.refit != "off" and len(rows) > len(split.train)
    from_validation = len(rows) - len(split.labelled)  # validation-file rows the refit trains on
    unlabeled = load_unlabeled(config, held=split.held_texts())
    descriptions, described_warnings = load_described(config, split.labelled)
    main = distributed.is_main()
    try:
        fits = _fit_both(config, split, rows, refitting=refitting, from_validation=from_validation,
                         unlabeled=unlabeled, descriptions=descriptions, checkpoints=checkpoints, resume=resume,
                         progress=progress if main else None)
    except TrainingDiverged:
        shutil.rmtree(checkpoints, ignore_errors=True)  # a diverged state is no use to a resume
        raise
    evaluated, shipped = fits
    metrics = TrainMetrics(shipped.metrics(), evaluated.metrics() if refitting else None, distributed.world_size())
    refit = RefitNote(len(rows), len(rows) - len(split.train), from_validation) if refitting else None
    report, fallback, warnings = None, None, [*described_warnings, *shipped.trained.warnings]
    if main:
        scores = _score(config, evaluated, split, refit)
        fallback = _saved_fallback(config, evaluated, split, scores)
        _write_run(config, evaluated=evaluated, shipped=shipped, profile=profile, metrics=metrics, scores=scores,
                   fallback=fallback, descriptions=descriptions)
        report = scores.report if scores else None
        warnings += scores.warnings if scores else []
        shutil.rmtree(checkpoints, ignore_errors=True)
    distributed.teardown()
    return TrainRun(config.output_dir, profile, evaluated.augmentation, report, metrics, warnings,
                    shipped.adjustment, refit, fallback, shipped.pseudo_counts(),
                    reported_adjustment=evaluated.adjustment if refitting else None)


def _fit_both(
    config: Config, split: Split, rows: IntentData, *, refitting: bool, from_validation: int,
    unlabeled: list[str] | None, descriptions: dict[str, str], checkpoints: Path, resume: bool,
    progress: Progress | None,
) -> tuple[Fitted, Fitted]:
    """The evaluated model and the shipped one (the same when there is no refit)."""
    evaluated = fit(config, split.train, validation=split.validation,
                    validation_name="held out of train" if split.validation_held_out else "validation",
                    unlabeled=unlabeled, descriptions=descriptions, checkpoints=checkpoints / "evaluated",
                    keep=refitting, resume=resume, progress=progress)
    if not refitting:
        return evaluated, evaluated
    # tau is chosen on rows a model never trained on: the refit's own on a validation file it
    # leaves out, else the evaluated model's (held-out validation rows are among the refit's)
    own_tau = split.validation is not None and not split.validation_held_out and from_validation == 0
    shipped = fit(config, rows, validation=split.validation if own_tau else None,
                  adjustment=None if own_tau else evaluated.adjustment, unlabeled=unlabeled,
                  descriptions=descriptions, checkpoints=checkpoints / "refit",
                  resume=resume, progress=suffixed(progress, "(refit on all rows)"))
    return evaluated, shipped


def _check_resume(config: Config, checkpoints: Path, *, resume: bool) -> None:
    """Say what a resume does: nothing to resume is said; a checkpoint is never discarded unasked."""
    found = checkpoints.is_dir() and any(checkpoints.iterdir())
    if resume and not found:
        log.warning("--resume: found no checkpoint of an interrupted run into %s (%s); training from the start",
                    config.output_dir, checkpoints)
    elif found and not resume:
        raise IntentbalError(
            f"{config.output_dir}: expected no unfinished run into it, found the checkpoint of an interrupted one "
            f"({checkpoints}); pass --resume to continue it, or delete that folder to start over"
        )


def refit_data(config: Config, split: Split) -> IntentData:
    """The rows a refit trains on: every row of ``data.train`` and, with ``train.refit`` "all", the
    ``data.validation`` file's rows of intents ``data.train`` has (never out-of-scope rows, never an
    intent the evaluated model could not predict). Eval rows are never trained on, not even when the
    validation file is the eval file."""
    labelled, validation = split.labelled, split.validation
    if config.train.refit != "all" or validation is None or split.validation_held_out:
        return labelled
    known, scored = set(labelled.intents), set(split.eval.texts if split.eval else ())
    extra = validation.subset(i for i, (text, intent) in enumerate(zip(validation.texts, validation.intents))
                              if intent in known and text not in scored)
    return IntentData([*labelled.texts, *extra.texts], [*labelled.intents, *extra.intents], labelled.source)


def checkpoint_dir(output_dir: Path) -> Path:
    """Where the checkpoints of a run writing ``output_dir`` live: a hidden folder beside it."""
    return output_dir.parent / f".{output_dir.name}.checkpoint"


def _score(config: Config, evaluated: Fitted, split: Split, refit: RefitNote | None) -> Scores | None:
    if split.eval is None:
        return None
    overlap = train_eval_overlap(split.train.texts, split.eval.texts, split.eval.intents)
    return score(config, evaluated.classifier, split.eval, train_counts=_counts(evaluated.data),
                 augmented_counts=_counts(evaluated.train_rows), pseudo_counts=evaluated.pseudo_counts(),
                 validation=split.validation, overlap=overlap, refit=refit.to_dict() if refit else None)


def _saved_fallback(config: Config, evaluated: Fitted, split: Split, scores: Scores | None) -> SavedFallback | None:
    """The threshold saved with the model: only a deployable one (see :func:`choose_fallback`)."""
    if scores is not None:
        f = scores.fallback
        chosen, on, deployable = f.threshold, f.chosen_on, f.deployable
    else:
        choice = choose_fallback(config, evaluated.classifier, split.validation)
        if choice is None:
            return None
        chosen, on, deployable = choice.threshold, choice.chosen_on, choice.deployable
    return SavedFallback(chosen, on, config.evaluate.fallback_intent) if deployable else None


def _write_run(
    config: Config, *, evaluated: Fitted, shipped: Fitted, profile: Profile, metrics: TrainMetrics,
    scores: Scores | None, fallback: SavedFallback | None, descriptions: dict[str, str],
) -> None:
    """The run folder, in one atomic step: ``shipped``'s model, ``evaluated``'s report."""
    from intentbal.reports.manifest import build_manifest

    meta = model_meta(config, shipped, refit=shipped is not evaluated, fallback=fallback, descriptions=descriptions)
    with atomic_dir(config.output_dir, kind="train") as out:
        atomic_write_text(out / "config.yaml", config_to_yaml(config))
        atomic_write_text(out / "manifest.json", json_text(build_manifest(config)))
        atomic_write_text(out / "profile.json", json_text(profile.to_dict()))
        write_table(out / "augmentation.jsonl", augmented_records(shipped.augmentation, synthetic_only=True),
                    columns=AUGMENT_COLUMNS)
        if shipped.pseudo:
            write_table(out / "pseudo_labels.jsonl", [asdict(p) for p in shipped.pseudo], columns=PSEUDO_COLUMNS)
        atomic_write_text(out / "train_metrics.json", json_text(metrics.to_dict()))
        if scores is not None:
            write_scores(config, out, scores, extra_figures=_curve(config, evaluated))
        replace(shipped.classifier, meta=meta).save(out / "model")
        atomic_write_text(out / "model" / "README.md",
                          card_text(config, meta, scores.report if scores else None, _eval_name(config)))


def _curve(config: Config, fitted: Fitted) -> dict[str, bytes]:
    """The evaluated model's training curve, as a figure of the report."""
    if not config.evaluate.plots or not fitted.trained.history:
        return {}
    from intentbal.reports import plots

    return {"training_curve": plots.training_curve(fitted.trained.history)}


def model_meta(
    config: Config, fitted: Fitted, *, refit: bool, fallback: SavedFallback | None,
    descriptions: dict[str, str] | None = None,
) -> dict[str, object]:
    """``intentbal.json``: what the model folder says about how it was made; ``descriptions`` are
    the training intents' descriptions (``data.descriptions``), kept for the model card."""
    counts = _counts(fitted.data)
    return {"train_counts": counts, "augmented_counts": _counts(fitted.train_rows),
            "max_length": config.model.max_length,
            "class_weights": dict(zip(fitted.trained.intents, fitted.trained.class_weights)),
            "logit_adjustment": fitted.adjustment.to_dict(), "refit": refit,
            "intentbal_version": intentbal.__version__, "recipe": recipe(config),
            "train_text_sha1": text_hashes(fitted.data.texts), "pseudo_counts": fitted.pseudo_counts(),
            "fallback": fallback.to_dict() if fallback else None, "descriptions": dict(descriptions or {})}


def _counts(data: IntentData) -> dict[str, int]:
    from intentbal.data.profiling import profile_intents

    return profile_intents(data.texts, data.intents).counts()


def _eval_name(config: Config) -> str | None:
    if config.data.eval is not None:
        return str(config.data.eval)
    return f"{config.data.eval_fraction:g} of each intent held out of {config.data.train} (seed {config.seed})"
