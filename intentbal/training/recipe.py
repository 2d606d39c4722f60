"""The recipe: the one place a model is made from labelled rows.

``fit`` is what ``train`` ships and what every ``cv`` fold measures: rebalance the rows
(``augment``), fine-tune one model or a soup (``train``), then the post-hoc logit
adjustment (``train.logit_adjustment``) written into the model's output bias. With unlabeled
utterances, that model is a teacher: its confident labels of them (see :mod:`intentbal.pseudo`)
join the labelled rows, and the same steps make the student. Every job that makes a model
calls it; none of them repeats a step of it.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from intentbal.config import Config
from intentbal.data.descriptions import intent_texts
from intentbal.data.profiling import profile_intents
from intentbal.data.types import IntentData
from intentbal.model.adjustment import Adjustment, TauSource
from intentbal.progress import Progress, suffixed
from intentbal.rebalance.augmentation import AugmentResult, augment_rare, resolve_target
from intentbal.rebalance.capping import cap_intents
from intentbal.rebalance.pseudo import PseudoLabel, select_pseudo_labels

if TYPE_CHECKING:
    from intentbal.inference.classifier import IntentClassifier
    from intentbal.training.results import TrainResult


@dataclass(frozen=True)
class FitMetrics:
    """How one fit went: its time, what it trained on, and where a resume picked it up."""

    train_seconds: float
    train_samples: int
    steps: int
    resumed_from_step: int
    train_rows: int  # labelled rows, after rebalancing
    pseudo_rows: int = 0  # unlabeled rows labelled by the teacher
    history: list[dict[str, object]] = field(default_factory=list)  # the training curve, one record per epoch

    @property
    def train_samples_per_second(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"train_seconds": round(self.train_seconds, 3), "train_samples": self.train_samples,
                "train_samples_per_second": round(self.train_samples_per_second, 3), "steps": self.steps,
                "resumed_from_step": self.resumed_from_step, "train_rows": self.train_rows,
                "pseudo_rows": self.pseudo_rows, "history": self.history}


@dataclass(frozen=True)
class Fitted:
    """A model made by :func:`fit`, ready to predict, with what it was made from."""

    classifier: IntentClassifier
    trained: TrainResult
    data: IntentData  # the labelled rows, before rebalancing
    augmentation: AugmentResult | None  # the rows after rebalancing, when anything was rebalanced
    adjustment: Adjustment
    pseudo: list[PseudoLabel] = field(default_factory=list)  # unlabeled utterances it also trained on
    teacher: Fitted | None = None  # the model that chose them

    @property
    def train_rows(self) -> IntentData:
        """The labelled rows the model trained on (rebalanced when rebalancing applied)."""
        return self.augmentation.data if self.augmentation is not None else self.data

    def pseudo_counts(self) -> dict[str, int]:
        return dict(Counter(p.intent for p in self.pseudo))

    def metrics(self) -> FitMetrics:
        t = self.trained
        return FitMetrics(t.train_seconds, t.train_samples, t.steps, t.resumed_from, len(self.train_rows),
                          len(self.pseudo), [r.to_dict() for r in t.history])


def fit(
    config: Config,
    data: IntentData,
    *,
    validation: IntentData | None = None,
    validation_name: TauSource = "validation",
    adjustment: Adjustment | None = None,
    unlabeled: list[str] | None = None,
    descriptions: Mapping[str, str] | None = None,
    checkpoints: Path | None = None,
    keep: bool = False,
    resume: bool = False,
    progress: Progress | None = None,
) -> Fitted:
    """The model the config's recipe makes from ``data``.

    Rebalance (``augment``; drawn on rank 0 and shared under torchrun), fine-tune
    (``train``, a soup when ``train.soup`` > 1), then adjust the logits: ``adjustment`` when
    given (a refit without a validation file reuses the tau chosen for the model it replaces),
    else ``train.logit_adjustment`` ("auto": chosen on ``validation``, reported as
    ``validation_name``; the default tau without it). The prior is each intent's share of ``data`` before rebalancing.

    Self-training: with ``unlabeled`` texts, the model so made is the teacher; the texts it labels
    with confidence (``self_training``) join the rebalanced rows, weighing ``self_training.weight``
    each, and the same steps make the student, which is returned (``teacher`` holds the teacher).
    Teacher and student share ``adjustment`` when it is given.

    ``descriptions`` (intent to description) and, with ``train.intent_names`` "auto", the intent names
    made of words describe the intents (see :mod:`intentbal.data.descriptions`): they pull the prototype
    head's starting vectors (``train.description_weight``) and join the rows (``train.description_rows``).

    Checkpoints go to ``checkpoints`` (resumed from with ``resume``); with ``keep`` the finished
    fine-tune is kept beside that folder, so a crash in a later phase of the caller's job does
    not lose it (see :func:`intentbal.training.checkpoint.keep_fit`).
    """
    teacher, pseudo = None, None
    if unlabeled:
        folder = checkpoints.with_name(checkpoints.name + "-teacher") if checkpoints is not None else None
        teacher = _fit_once(config, data, validation=validation, validation_name=validation_name,
                            adjustment=adjustment, checkpoints=folder, keep=folder is not None, resume=resume,
                            progress=suffixed(progress, "(teacher)"), descriptions=descriptions)
        pseudo = label_pool(config, teacher, unlabeled)
    return _fit_once(config, data, validation=validation, validation_name=validation_name, adjustment=adjustment,
                     pseudo=pseudo or [], teacher=teacher, checkpoints=checkpoints, keep=keep, resume=resume,
                     progress=progress, descriptions=descriptions)


def label_pool(config: Config, teacher: Fitted, unlabeled: list[str]) -> list[PseudoLabel]:
    """The pool texts whose teacher labels the student trains on (see :mod:`intentbal.rebalance.pseudo`)."""
    s = config.self_training
    probs = teacher.classifier.proba(unlabeled)
    return select_pseudo_labels(unlabeled, probs, teacher.classifier.intents, Counter(teacher.data.intents),
                                threshold=s.threshold, alpha=s.alpha, exclude=set(teacher.data.texts))


def _fit_once(
    config: Config, data: IntentData, *, validation: IntentData | None, validation_name: TauSource,
    adjustment: Adjustment | None, checkpoints: Path | None, keep: bool, resume: bool, progress: Progress | None,
    pseudo: list[PseudoLabel] | None = None, teacher: Fitted | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> Fitted:
    from intentbal.inference.classifier import IntentClassifier
    from intentbal.training import distributed

    main = distributed.is_main()
    augmented = distributed.share(rebalance(config, data, progress=progress if main else None) if main else None)
    rows = augmented.data if augmented is not None else data
    if pseudo:
        rows = rows.extended([p.text for p in pseudo], [p.intent for p in pseudo],
                             weight=config.self_training.weight)
    texts = intent_texts(sorted(set(data.intents)), descriptions=descriptions, names=config.train.intent_names)
    if config.train.description_rows and texts:
        rows = rows.extended(list(texts.values()), list(texts), weight=config.train.description_rows)
    trained = _fine_tune(config, rows, checkpoints, validation=validation, keep=keep, resume=resume,
                         progress=progress, descriptions=texts)
    clf = IntentClassifier.from_trained(trained, max_length=config.model.max_length,
                                       batch_size=config.evaluate.batch_size)
    chosen = adjustment or choose_adjustment(config, clf, data, validation, validation_name=validation_name)
    _bake(trained, data, chosen.tau)
    return Fitted(clf, trained, data, augmented, chosen, list(pseudo or []), teacher)


def rebalance(config: Config, data: IntentData, *, progress: Progress | None = None,
              force: bool = False, keep_words: Mapping[str, Sequence[str]] | None = None) -> AugmentResult | None:
    """``data`` rebalanced per ``config.augment``: frequent intents capped at ``max_per_intent``,
    then rare intents augmented (always, with ``force``; ``keep_words`` as in
    :func:`intentbal.rebalance.augmentation.augment_rare`). None when neither applies."""
    a = config.augment
    if a.max_per_intent is not None:
        data = cap_intents(data, max_count=a.max_per_intent, seed=config.seed)
    if not (a.enabled or force):
        return AugmentResult(data, [], 0) if a.max_per_intent is not None else None
    counts = profile_intents(data.texts, data.intents).counts()
    target = resolve_target(counts, target_count=a.target_count, target_fraction=a.target_fraction)
    return augment_rare(data, target=target, augmenters=a.augmenters, seed=config.seed,
                        max_attempts=a.max_attempts, protect_words=a.protect_words, keep_words=keep_words,
                        progress=progress)


def choose_adjustment(
    config: Config, clf: IntentClassifier, data: IntentData, validation: IntentData | None,
    *, validation_name: TauSource = "validation",
) -> Adjustment:
    """tau per ``train.logit_adjustment``: the number given, else the best macro recall on
    ``validation`` with the prior of ``data`` (see :mod:`intentbal.model.adjustment`), else the default."""
    import numpy as np

    from intentbal.model import adjustment as adjust

    setting = config.train.logit_adjustment
    if setting != "auto":
        return Adjustment(float(setting), "given")
    if validation is None:
        return Adjustment(adjust.DEFAULT_TAU, "default")
    prior = adjust.log_prior(Counter(data.intents), clf.intents)
    log_probs = np.log(clf.proba(validation.texts) + 1e-12)
    return Adjustment(adjust.choose_tau(log_probs, validation.intents, clf.intents, prior), validation_name)


def _bake(trained: TrainResult, data: IntentData, tau: float) -> None:
    from intentbal.model import adjustment as adjust

    if tau:
        adjust.bake(trained.model, adjust.log_prior(Counter(data.intents), trained.intents), tau)


def _fine_tune(
    config: Config, rows: IntentData, folder: Path | None, *, validation: IntentData | None, keep: bool,
    resume: bool, progress: Progress | None, descriptions: Mapping[str, str] | None = None,
) -> TrainResult:
    """``train_soup`` on ``rows``, checkpointing in ``folder``. With ``keep`` the finished fit is kept
    beside it (``folder.safetensors``), and a resume loads it instead of training it again; only
    when checkpoints are on and it ran at least ``train.save_steps`` steps (a shorter fit is never
    checkpointed either, so a failed short run leaves nothing behind)."""
    from intentbal.training import distributed
    from intentbal.training.checkpoint import keep_fit, kept_fit
    from intentbal.training.soup import train_soup

    m, t, seed = config.model, config.train, config.seed
    if folder is None:
        t = t.model_copy(update={"save_steps": 0})
    kept = folder.with_name(folder.name + ".safetensors") if folder is not None and keep else None
    if kept is not None and resume and (found := kept_fit(kept, rows, model_config=m, train_config=t,
                                                          seed=seed)) is not None:
        return found
    trained = train_soup(rows, model_config=m, train_config=t, seed=seed, progress=progress,
                         checkpoint_dir=folder, resume=resume, validation=validation, descriptions=descriptions)
    if kept is not None and folder is not None:
        if t.save_steps and trained.steps >= t.save_steps:
            keep_fit(kept, trained, rows, model_config=m, train_config=t, seed=seed)
        if distributed.is_main():
            shutil.rmtree(folder, ignore_errors=True)  # its mid-training state is no longer needed
    return trained
