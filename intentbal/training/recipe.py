"""The recipe: the one place a model is made from labelled rows.

A model is made by :func:`fit`: the row transforms (:func:`row_transforms`, in order: capping,
augmentation, pseudo-labelled rows, description rows), a fine-tune of one model or a soup
(``train``), then the post-hoc logit adjustment (``train.logit_adjustment``) written into the
model's output bias. With unlabeled utterances, that model is a teacher: its confident labels of
them (see :mod:`intentbal.rebalance.pseudo`) join the rows, and the same steps make the student.

Which models a run makes is the recipe's too: :func:`fit_evaluated`, the model reported on (what
every ``cv`` fold measures), trained without the eval and validation rows; and
:func:`fit_shipped`, the refit policy (``train.refit``): the rows the shipped model trains on, the
tau it applies and its own teacher. The commands call these and decide nothing of them.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intentbal.config import Config, TrainConfig
from intentbal.data.descriptions import intent_texts
from intentbal.data.inputs import Split
from intentbal.data.types import IntentData
from intentbal.evaluation.metrics import RefitNote
from intentbal.model.adjustment import Adjustment, TauSource
from intentbal.progress import Progress, suffixed
from intentbal.rebalance.augmentation import AugmentRare
from intentbal.rebalance.capping import CapIntents
from intentbal.rebalance.description_rows import DescriptionRows
from intentbal.rebalance.pseudo import PseudoLabel, PseudoRows, pseudo_labels, select_pseudo_labels
from intentbal.rebalance.transforms import RowTransform, apply

if TYPE_CHECKING:
    from intentbal.inference.classifier import IntentClassifier
    from intentbal.training.results import TrainResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
class Fitted:
    """A model made by :func:`fit`, ready to predict, with what it was made from."""

    classifier: IntentClassifier
    trained: TrainResult
    data: IntentData  # the labelled rows, before the row transforms
    rows: IntentData  # the rows it trained on, with the provenance of those the transforms added
    adjustment: Adjustment
    teacher: Fitted | None = None  # with self-training, the model that chose the pseudo-labelled rows

    @property
    def train_rows(self) -> IntentData:
        """The labelled rows the model trained on, rebalanced (without pseudo-labelled and description rows)."""
        return self.rows.without("pseudo", "description")

    @property
    def pseudo(self) -> list[PseudoLabel]:
        """The unlabeled utterances it also trained on, as its teacher labelled them."""
        return pseudo_labels(self.rows)

    def pseudo_counts(self) -> dict[str, int]:
        return dict(Counter(p.intent for p in self.pseudo))

    def metrics(self) -> FitMetrics:
        t = self.trained
        return FitMetrics(train_seconds=t.train_seconds, train_samples=t.train_samples, steps=t.steps,
                          resumed_from_step=t.resumed_from, train_rows=len(self.train_rows),
                          pseudo_rows=len(self.rows.made_by("pseudo")), history=[r.to_dict() for r in t.history])


@dataclass(frozen=True, kw_only=True)
class Shipped:
    """The model a run ships (:func:`fit_shipped`) and, when it is a refit, how it differs from the
    model reported on."""

    fitted: Fitted
    refit: RefitNote | None


def rebalancing(
    config: Config, *, force: bool = False, keep_words: Mapping[str, Sequence[str]] | None = None,
    progress: Progress | None = None,
) -> list[RowTransform]:
    """The transforms of ``augment``: capping (``max_per_intent``), then augmentation (when enabled,
    or ``force``; ``keep_words`` as in :func:`intentbal.rebalance.augmentation.augment_rare`)."""
    a = config.augment
    transforms: list[RowTransform] = []
    if a.max_per_intent is not None:
        transforms.append(CapIntents(max_count=a.max_per_intent, seed=config.seed))
    if a.enabled or force:
        transforms.append(AugmentRare(target_count=a.target_count, target_fraction=a.target_fraction,
                                      augmenters=a.augmenters, seed=config.seed, max_attempts=a.max_attempts,
                                      protect_words=a.protect_words, keep_words=keep_words, progress=progress))
    return transforms


def row_transforms(
    config: Config, *, pseudo: Sequence[PseudoLabel] = (), descriptions: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> list[RowTransform]:
    """The recipe's row transforms, in order: :func:`rebalancing`, the ``pseudo``-labelled rows
    (``self_training.weight``), one row per described intent (``train.description_rows``)."""
    transforms = rebalancing(config, progress=progress)
    if pseudo:
        transforms.append(PseudoRows(labels=pseudo, weight=config.self_training.weight))
    if config.train.description_rows and descriptions:
        transforms.append(DescriptionRows(texts=descriptions, weight=config.train.description_rows))
    return transforms


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
    role: str = "the model",
    warm_from: Fitted | None = None,
) -> Fitted:
    """The model the config's recipe makes from ``data`` (``role`` names it in the log).

    The row transforms (:func:`row_transforms`; drawn on rank 0 and shared under torchrun), a
    fine-tune (``train``, a soup when ``train.soup`` > 1), then the logit adjustment: ``adjustment``
    when given, else ``train.logit_adjustment`` ("auto": chosen on ``validation``, reported as
    ``validation_name``; the default tau without it). The prior is each intent's share of ``data``
    before the transforms.

    Self-training: with ``unlabeled`` texts, the model so made (from ``self_training.teacher`` when
    set, see :func:`teacher_config`) is the teacher; the texts it labels
    with confidence (``self_training``, at most ``max_per_intent`` per intent) join the rows, and the
    same recipe makes the student, in its teacher's number of steps under ``self_training.steps``
    "labelled" (:func:`train_section`), which is returned (``teacher`` holds the teacher). Teacher
    and student share ``adjustment`` when given.

    ``descriptions`` (intent to description) and, with ``train.intent_names`` "auto", the intent names
    made of words describe the intents (see :mod:`intentbal.data.descriptions`): they pull the prototype
    head's starting vectors (``train.description_weight``) and join the rows (``train.description_rows``).

    Checkpoints go to ``checkpoints`` (resumed from with ``resume``); with ``keep`` the finished
    fine-tune is kept beside that folder, so a crash in a later phase of the caller's job does
    not lose it (see :func:`intentbal.training.checkpoint.keep_fit`).

    ``warm_from``: a model of the same intents to fine-tune further (:func:`warm_start`) instead of
    the pretrained one; with self-training its teacher is where the teacher starts.
    """
    teacher, pseudo = None, None
    if unlabeled:
        folder = checkpoints.with_name(checkpoints.name + "-teacher") if checkpoints is not None else None
        teacher = _fit_once(teacher_config(config), data, validation=validation, validation_name=validation_name,
                            adjustment=adjustment, checkpoints=folder, keep=folder is not None, resume=resume,
                            progress=suffixed(progress, "(teacher)"), descriptions=descriptions,
                            role=f"the teacher of {role}",
                            warm_from=warm_from.teacher if warm_from is not None else None)
        start = time.perf_counter()
        pseudo = label_pool(config, teacher, unlabeled)
        log.info("self-training: %d of them labelled with confidence (in %.0f s) join %s's rows", len(pseudo),
                 time.perf_counter() - start, role)
    return _fit_once(config, data, validation=validation, validation_name=validation_name, adjustment=adjustment,
                     pseudo=pseudo or [], teacher=teacher, checkpoints=checkpoints, keep=keep, resume=resume,
                     progress=progress, descriptions=descriptions, role=role, warm_from=warm_from)


def fit_evaluated(
    config: Config, split: Split, *, unlabeled: list[str] | None = None, descriptions: Mapping[str, str] | None = None,
    checkpoints: Path | None = None, resume: bool = False, progress: Progress | None = None,
) -> Fitted:
    """The model a run reports on (and a ``cv`` fold measures): trained on ``split.train``, its tau
    chosen on ``split.validation``. Kept beside its checkpoints when a refit follows (:func:`refits`)."""
    return fit(config, split.train, validation=split.validation,
               validation_name="held out of train" if split.validation_held_out else "validation",
               unlabeled=unlabeled, descriptions=descriptions,
               checkpoints=checkpoints / "evaluated" if checkpoints is not None else None,
               keep=refits(config, split) and checkpoints is not None, resume=resume, progress=progress,
               role="the model reported on" if refits(config, split) else "the model")


def fit_shipped(
    config: Config, split: Split, evaluated: Fitted, *, unlabeled: list[str] | None = None,
    descriptions: Mapping[str, str] | None = None, checkpoints: Path | None = None, resume: bool = False,
    progress: Progress | None = None,
) -> Shipped:
    """The model a run ships: ``evaluated`` itself, or, when :func:`refits`, the same recipe and seed
    on :func:`refit_rows` (self-trained, with ``unlabeled``, by its own teacher made from those rows:
    the rarest intents lose half their examples to the hold-outs, so the evaluated teacher labels
    the pool for them worst). Its tau is chosen on rows it never trained on: on the validation file
    when the refit leaves it out, else it is the evaluated model's.

    With ``train.refit_epochs`` the refit starts from ``evaluated`` (its teacher from ``evaluated``'s)
    and trains that many passes. Both know the same intents: the hold-outs never take all of an
    intent's rows, and validation rows join only for intents the labelled rows have."""
    if not refits(config, split):
        return Shipped(fitted=evaluated, refit=None)
    rows = refit_rows(config, split)
    from_validation = len(rows) - len(split.labelled)
    own_tau = split.validation is not None and not split.validation_held_out and from_validation == 0
    log.info("refit: the shipped model trains on all %d labelled rows (%d more than the model reported on)",
             len(rows), len(rows) - len(split.train))
    warm = config.train.refit_epochs is not None
    if warm:
        log.info("refit: continues the model reported on for train.refit_epochs=%g", config.train.refit_epochs)
        config = config.model_copy(update={"train": config.train.model_copy(
            update={"epochs": config.train.refit_epochs})})
    fitted = fit(config, rows, validation=split.validation if own_tau else None, warm_from=evaluated if warm else None,
                 adjustment=None if own_tau else evaluated.adjustment, unlabeled=unlabeled, descriptions=descriptions,
                 checkpoints=checkpoints / "refit" if checkpoints is not None else None, resume=resume,
                 progress=suffixed(progress, "(refit on all rows)"), role="the shipped refit")
    note = RefitNote(rows=len(rows), held_out_rows=len(rows) - len(split.train), validation_rows=from_validation)
    return Shipped(fitted=fitted, refit=note)


def refits(config: Config, split: Split) -> bool:
    """Whether the shipped model is a refit: ``train.refit`` is not "off" and the evaluated model
    did not train on every row the refit would."""
    return config.train.refit != "off" and len(refit_rows(config, split)) > len(split.train)


def refit_rows(config: Config, split: Split) -> IntentData:
    """The rows a refit trains on: every labelled row and, with ``train.refit`` "all", the
    ``data.validation`` file's rows of intents the labelled rows have (never out-of-scope rows, never
    an intent the evaluated model could not predict). Eval rows are never trained on, not even when
    the validation file is the eval file."""
    labelled, validation = split.labelled, split.validation
    if config.train.refit != "all" or validation is None or split.validation_held_out:
        return labelled
    known, scored = set(labelled.intents), set(split.eval.texts if split.eval else ())
    extra = validation.subset(i for i, (text, intent) in enumerate(zip(validation.texts, validation.intents))
                              if intent in known and text not in scored)
    return IntentData([*labelled.texts, *extra.texts], [*labelled.intents, *extra.intents], labelled.source)


def teacher_config(config: Config) -> Config:
    """The config a teacher is made with: ``config`` itself, or with ``self_training.teacher`` as its
    ``model.name_or_path`` (the rest of the recipe, its head included, unchanged)."""
    name = config.self_training.teacher
    if name is None or name == config.model.name_or_path:
        return config
    log.info("self-training: the teacher is fine-tuned from %s", name)
    return config.model_copy(update={"model": config.model.model_copy(update={"name_or_path": name})})


def label_pool(config: Config, teacher: Fitted, unlabeled: list[str]) -> list[PseudoLabel]:
    """The pool texts whose teacher labels the student trains on (see :mod:`intentbal.rebalance.pseudo`).

    The teacher labels them in the arithmetic it trained in (``train.precision``, see
    :func:`intentbal.training.plan.uses_bf16`): under bf16 where the device has it natively, about
    three times the fp32 rate on such a CPU, the pool being most of what a teacher ever predicts.
    """
    from intentbal.training.plan import native_bf16, uses_bf16

    s = config.self_training
    counts = Counter(teacher.data.intents)
    device = next(teacher.classifier.model.parameters()).device.type
    bf16 = uses_bf16(config.train.precision, bf16_supported=native_bf16(device))
    log.info("self-training: the teacher labels %d unlabeled utterances in %s", len(unlabeled),
             "bf16" if bf16 else "fp32")
    probs = teacher.classifier.proba(unlabeled, bf16=bf16)
    cap = max(counts.values()) if s.max_per_intent == "largest" else s.max_per_intent
    return select_pseudo_labels(unlabeled, probs, teacher.classifier.intents, counts, threshold=s.threshold,
                                alpha=s.alpha, exclude=set(teacher.data.texts), max_per_intent=cap)


def _fit_once(
    config: Config, data: IntentData, *, validation: IntentData | None, validation_name: TauSource,
    adjustment: Adjustment | None, checkpoints: Path | None, keep: bool, resume: bool, progress: Progress | None,
    pseudo: list[PseudoLabel] | None = None, teacher: Fitted | None = None,
    descriptions: Mapping[str, str] | None = None, role: str = "the model", warm_from: Fitted | None = None,
) -> Fitted:
    from intentbal.inference.classifier import IntentClassifier
    from intentbal.training import distributed

    texts = intent_texts(sorted(set(data.intents)), descriptions=descriptions, names=config.train.intent_names)
    main = distributed.is_main()
    transforms = row_transforms(config, pseudo=pseudo or [], descriptions=texts,
                                progress=progress if main else None)
    rows: IntentData = distributed.share(apply(transforms, data) if main else data)  # rank 0's rows everywhere
    if main:
        log.info("%s: %s", role, _rows_line(data, rows))
        if (epochs := train_section(config, rows).epochs) != config.train.epochs:
            log.info("%s: %.2f epochs, the steps of %g epochs without the pool's rows (self_training.steps)",
                     role, epochs, config.train.epochs)
    trained = _fine_tune(config, rows, checkpoints, validation=validation, keep=keep, resume=resume,
                         progress=progress, descriptions=texts,
                         initial=warm_start(warm_from) if warm_from else None)
    clf = IntentClassifier.from_trained(trained, max_length=config.model.max_length,
                                       batch_size=config.evaluate.batch_size)
    chosen = adjustment or choose_adjustment(config, clf, data, validation, validation_name=validation_name)
    _bake(trained, data, chosen.tau)
    if main:
        log.info("%s: trained in %.0f s; logit adjustment tau %g (%s)", role, trained.train_seconds, chosen.tau,
                 chosen.describe())
    return Fitted(classifier=clf, trained=trained, data=data, rows=rows, adjustment=chosen, teacher=teacher)


def _rows_line(data: IntentData, rows: IntentData) -> str:
    """What a model trains on, in words: its labelled rows and what each transform added."""
    added = Counter(p.made_by for p in rows.provenance if p is not None) if rows.provenance else Counter()
    words = {"augment": "augmented", "pseudo": "pseudo-labelled", "description": "description rows"}
    extra = "".join(f" + {n} {words[kind]}" for kind, n in sorted(added.items()))
    kept = len(rows) - sum(added.values())
    capped = f" (capped from {len(data)})" if kept < len(data) else ""
    return f"trains on {kept} labelled rows{capped}{extra}, {len(set(data.intents))} intents"


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
        return Adjustment(tau=float(setting), chosen_on="given")
    if validation is None:
        return Adjustment(tau=adjust.DEFAULT_TAU, chosen_on="default")
    prior = adjust.log_prior(Counter(data.intents), clf.intents)
    log_probs = np.log(clf.proba(validation.texts) + 1e-12)
    return Adjustment(tau=adjust.choose_tau(log_probs, validation.intents, clf.intents, prior),
                      chosen_on=validation_name)


def _bake(trained: TrainResult, data: IntentData, tau: float) -> None:
    from intentbal.model import adjustment as adjust

    if tau:
        adjust.bake(trained.model, adjust.log_prior(Counter(data.intents), trained.intents), tau)


def warm_start(fitted: Fitted) -> dict[str, Any]:
    """The weights a fine-tune continuing ``fitted`` starts from: its model's, with the logit
    adjustment that :func:`fit` wrote into the output bias taken out again (a copy: ``fitted`` is
    left as it is)."""
    import torch

    from intentbal.model import adjustment as adjust

    model = fitted.trained.model
    state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    if fitted.adjustment.tau:
        head = adjust.output_layer(model)
        name = next(n for n, p in model.named_parameters() if p is head.bias)
        prior = adjust.log_prior(Counter(fitted.data.intents), fitted.trained.intents)
        state[name] += torch.as_tensor(fitted.adjustment.tau * prior, dtype=state[name].dtype,
                                       device=state[name].device)
    return state


def train_section(config: Config, rows: IntentData) -> TrainConfig:
    """The ``train`` section a fine-tune of ``rows`` runs with: as configured, except that a student
    (``rows`` with pseudo-labelled rows) under ``self_training.steps`` "labelled" passes over its rows
    fewer times, taking the steps of the same fit without them: its time stays that of its teacher,
    however many rows the pool lends."""
    borrowed = len(rows.made_by("pseudo"))
    if not borrowed or config.self_training.steps == "all":
        return config.train
    return config.train.model_copy(update={"epochs": config.train.epochs * (len(rows) - borrowed) / len(rows)})


def _fine_tune(
    config: Config, rows: IntentData, folder: Path | None, *, validation: IntentData | None, keep: bool,
    resume: bool, progress: Progress | None, descriptions: Mapping[str, str] | None = None,
    initial: Mapping[str, Any] | None = None,
) -> TrainResult:
    """``train_soup`` on ``rows``, checkpointing in ``folder``. With ``keep`` the finished fit is kept
    beside it (``folder.safetensors``), and a resume loads it instead of training it again; only
    when checkpoints are on and it ran at least ``train.save_steps`` steps (a shorter fit is never
    checkpointed either, so a failed short run leaves nothing behind)."""
    from intentbal.training import distributed
    from intentbal.training.checkpoint import keep_fit, kept_fit
    from intentbal.training.soup import train_soup

    m, t, seed = config.model, train_section(config, rows), config.seed
    if folder is None:
        t = t.model_copy(update={"save_steps": 0})
    kept = folder.with_name(folder.name + ".safetensors") if folder is not None and keep else None
    if kept is not None and resume and (found := kept_fit(kept, rows, model_config=m, train_config=t,
                                                          seed=seed)) is not None:
        return found
    trained = train_soup(rows, model_config=m, train_config=t, seed=seed, progress=progress,
                         checkpoint_dir=folder, resume=resume, validation=validation, descriptions=descriptions,
                         initial=initial)
    if kept is not None and folder is not None:
        if t.save_steps and trained.steps >= t.save_steps:
            keep_fit(kept, trained, rows, model_config=m, train_config=t, seed=seed)
        if distributed.is_main():
            shutil.rmtree(folder, ignore_errors=True)  # its mid-training state is no longer needed
    return trained
