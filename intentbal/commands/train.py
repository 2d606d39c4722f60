"""``intentbal train``: a coordinator of named phases; every recipe decision is the recipe's.

1. claim the output folder (checked, locked, mended);
2. load the data and split it into roles (:func:`intentbal.data.inputs.load_split`), profile it;
3. fit the model reported on (:func:`intentbal.training.recipe.fit_evaluated`);
4. fit the model shipped (:func:`intentbal.training.recipe.fit_shipped`: the refit policy);
5. score the reported model on the eval rows and choose the fallback threshold;
6. write the run folder in one atomic step.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import intentbal
from intentbal.commands.augment import AUGMENT_COLUMNS
from intentbal.config import Config
from intentbal.data.inputs import Split, load_described, load_split, load_unlabeled, profile_of, run_inputs
from intentbal.data.overlap import text_hashes, train_eval_overlap
from intentbal.data.profiling import Profile
from intentbal.data.types import IntentData
from intentbal.errors import IntentbalError, TrainingDiverged
from intentbal.evaluation.fallback import ThresholdSource
from intentbal.evaluation.metrics import RefitNote, Report
from intentbal.evaluation.scoring import Scores, choose_fallback, score
from intentbal.io.atomic import atomic_write_text, json_text
from intentbal.io.config_yaml import config_to_yaml
from intentbal.io.folders import atomic_dir, output_folder
from intentbal.io.tables import write_table
from intentbal.model.adjustment import Adjustment
from intentbal.model.memo import shared_encoder_outputs
from intentbal.model.record import FallbackRecord, ModelRecord, TauRecord, TextHashes, input_digests, portable
from intentbal.progress import Progress
from intentbal.rebalance.augmentation import synthetic_rows
from intentbal.reports.card import card_text
from intentbal.reports.files import write_scores
from intentbal.training.recipe import FitMetrics, Fitted, fit_evaluated, fit_shipped

log = logging.getLogger(__name__)

PSEUDO_COLUMNS = ["text", "intent", "confidence"]


@dataclass(frozen=True, kw_only=True)
class SavedFallback:
    """The fallback threshold saved with the model, where it was chosen, and the intent it answers."""

    threshold: float
    chosen_on: ThresholdSource
    intent: str

    def to_dict(self) -> dict[str, object]:
        return {"threshold": self.threshold, "chosen_on": self.chosen_on, "intent": self.intent}


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
class TrainRun:
    """What ``train_run`` wrote and found."""

    output_dir: Path
    profile: Profile
    evaluated: Fitted  # the model reported on
    shipped: Fitted  # the model in output_dir/model (the same one without a refit)
    report: Report | None  # None without eval rows
    metrics: TrainMetrics
    warnings: list[str]
    refit: RefitNote | None = None
    fallback: SavedFallback | None = None

    @property
    def adjustment(self) -> Adjustment:
        """The shipped model's logit adjustment."""
        return self.shipped.adjustment

    @property
    def reported_adjustment(self) -> Adjustment | None:
        """The reported model's logit adjustment, when a refit ships another model."""
        return self.evaluated.adjustment if self.refit is not None else None

    @property
    def pseudo(self) -> dict[str, int]:
        """Unlabeled utterances the shipped model trained on, per intent."""
        return self.shipped.pseudo_counts()


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
    main = distributed.is_main()
    if main:
        log.debug("settings other than the defaults: %s", config.model_dump(mode="json", exclude_defaults=True))
    split = load_split(config)
    check_trainable(split.train)
    profile = profile_of(config, split.train, split.eval.intents if split.eval else ())
    if main:
        log.info("profile: %d training rows of %d intents; %d validation rows, %d eval rows", len(split.train),
                 profile.n_intents, len(split.validation or ()), len(split.eval or ()))
    unlabeled = load_unlabeled(config, held=split.held_texts())
    descriptions, warnings = load_described(config, split.labelled)
    checkpoints = checkpoint_dir(config.output_dir)
    _check_resume(config, checkpoints, resume=resume)
    shown = progress if main else None
    try:
        with shared_encoder_outputs():  # the fits' frozen states and starting embeddings, once per row
            evaluated = fit_evaluated(config, split, unlabeled=unlabeled, descriptions=descriptions,
                                      checkpoints=checkpoints, resume=resume, progress=shown)
            shipped = fit_shipped(config, split, evaluated, unlabeled=unlabeled, descriptions=descriptions,
                                  checkpoints=checkpoints, resume=resume, progress=shown)
    except TrainingDiverged:
        shutil.rmtree(checkpoints, ignore_errors=True)  # a diverged state is no use to a resume
        raise
    metrics = TrainMetrics(shipped=shipped.fitted.metrics(),
                           evaluated=evaluated.metrics() if shipped.refit is not None else None,
                           processes=distributed.world_size())
    report, fallback, warnings = None, None, [*warnings, *shipped.fitted.trained.warnings]
    if main:
        if split.eval is not None:
            log.info("scoring the model reported on, on %d eval rows", len(split.eval))
        scores = _score(config, evaluated, split, shipped.refit)
        fallback = _saved_fallback(config, evaluated, split, scores)
        _write_run(config, evaluated=evaluated, shipped=shipped.fitted, profile=profile, metrics=metrics,
                   scores=scores, fallback=fallback, descriptions=descriptions)
        report = scores.report if scores else None
        warnings += scores.warnings if scores else []
        shutil.rmtree(checkpoints, ignore_errors=True)
    distributed.teardown()
    return TrainRun(output_dir=config.output_dir, profile=profile, evaluated=evaluated, shipped=shipped.fitted,
                    report=report, metrics=metrics, warnings=warnings, refit=shipped.refit, fallback=fallback)


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


def checkpoint_dir(output_dir: Path) -> Path:
    """Where the checkpoints of a run writing ``output_dir`` live: a hidden folder beside it."""
    return output_dir.parent / f".{output_dir.name}.checkpoint"


def _score(config: Config, evaluated: Fitted, split: Split, refit: RefitNote | None) -> Scores | None:
    if split.eval is None:
        return None
    overlap = train_eval_overlap(split.train.texts, split.eval.texts, split.eval.intents)
    return score(config, evaluated.classifier, split.eval, train_counts=_counts(evaluated.data),
                 augmented_counts=_counts(evaluated.train_rows), pseudo_counts=evaluated.pseudo_counts(),
                 validation=split.validation, overlap=overlap, refit=refit)


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
    return SavedFallback(threshold=chosen, chosen_on=on, intent=config.evaluate.fallback_intent) if deployable else None


def _write_run(
    config: Config, *, evaluated: Fitted, shipped: Fitted, profile: Profile, metrics: TrainMetrics,
    scores: Scores | None, fallback: SavedFallback | None, descriptions: dict[str, str],
) -> None:
    """The run folder, in one atomic step: ``shipped``'s model, ``evaluated``'s report."""
    from intentbal.reports.manifest import build_manifest

    record = model_record(config, shipped, refit=shipped is not evaluated, fallback=fallback,
                          descriptions=descriptions)
    log.info("writing %s", config.output_dir)
    with atomic_dir(config.output_dir, kind="train") as out:
        atomic_write_text(out / "config.yaml", config_to_yaml(config))
        atomic_write_text(out / "manifest.json", json_text(build_manifest(config)))
        atomic_write_text(out / "profile.json", json_text(profile.to_dict()))
        write_table(out / "augmentation.jsonl", [asdict(r) for r in synthetic_rows(shipped.rows)],
                    columns=AUGMENT_COLUMNS)
        if shipped.pseudo:
            write_table(out / "pseudo_labels.jsonl", [asdict(p) for p in shipped.pseudo], columns=PSEUDO_COLUMNS)
        atomic_write_text(out / "train_metrics.json", json_text(metrics.to_dict()))
        if scores is not None:
            write_scores(config, out, scores, extra_figures=_curve(config, evaluated))
        replace(shipped.classifier, record=record).save(out / "model")
        atomic_write_text(out / "model" / "README.md",
                          card_text(config, record, scores.report if scores else None, _eval_name(config)))


def _curve(config: Config, fitted: Fitted) -> dict[str, bytes]:
    """The evaluated model's training curve, as a figure of the report."""
    if not config.evaluate.plots or not fitted.trained.history:
        return {}
    from intentbal.reports import plots

    return {"training_curve": plots.training_curve(fitted.trained.history)}


def model_record(
    config: Config, fitted: Fitted, *, refit: bool, fallback: SavedFallback | None,
    descriptions: dict[str, str] | None = None,
) -> ModelRecord:
    """``intentbal.json``: what the model folder says about how it was made, from the config (every
    field) and the fit; ``descriptions`` are the training intents' descriptions, kept for the card."""
    return ModelRecord(
        intentbal_version=intentbal.__version__, config=portable(config), files=input_digests(config),
        max_length=config.model.max_length, train_counts=_counts(fitted.data),
        augmented_counts=_counts(fitted.train_rows), pseudo_counts=fitted.pseudo_counts(),
        class_weights=dict(zip(fitted.trained.intents, fitted.trained.class_weights)),
        logit_adjustment=TauRecord(tau=fitted.adjustment.tau, chosen_on=fitted.adjustment.chosen_on), refit=refit,
        train_text_sha1=TextHashes(**text_hashes(fitted.data.texts)),
        fallback=FallbackRecord(**fallback.to_dict()) if fallback else None,
        descriptions=dict(descriptions or {}),
    )


def _counts(data: IntentData) -> dict[str, int]:
    from intentbal.data.profiling import profile_intents

    return profile_intents(data.texts, data.intents).counts()


def _eval_name(config: Config) -> str | None:
    """The eval data as the card names it: a file name, never a path of this machine."""
    if config.data.eval is not None:
        return Path(config.data.eval).name
    train = Path(config.data.train).name if config.data.train is not None else "the training data"
    return f"{config.data.eval_fraction:g} of each intent held out of {train} (seed {config.seed})"
