"""What a job reads: data files with the config's columns, the train/eval/validation split,
and the checks that refuse data no model should be trained or scored on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from intentbal.config import Config
from intentbal.data.descriptions import load_descriptions
from intentbal.data.profiling import Profile, profile_intents
from intentbal.data.readers import load_intents
from intentbal.data.splits import hold_out_validation, stratified_split
from intentbal.data.types import IntentData
from intentbal.errors import IntentbalError
from intentbal.listing import listing


@dataclass(frozen=True, kw_only=True)
class Split:
    """The rows of a run, by role."""

    labelled: IntentData  # every labelled training row (data.train, or a cv fold's rows)
    train: IntentData  # the rows the evaluated model trains on
    eval: IntentData | None
    not_evaluable: list[str]  # intents too small to hold any example out (they stay in train)
    validation: IntentData | None = None
    validation_held_out: bool = False  # validation was held out of the training data

    def held_texts(self) -> set[str]:
        """The eval and validation texts: never to be trained on."""
        return set(self.eval.texts if self.eval else ()) | set(self.validation.texts if self.validation else ())


def load_data(config: Config, path: Path, split: str, *, require_intent: bool = True) -> IntentData:
    """``path`` loaded with the config's column names."""
    return load_intents(path, text_column=config.data.text_column, intent_column=config.data.intent_column,
                        split=split, require_intent=require_intent)


def load_training(config: Config, *, missing: str = "no training data: expected --train PATH or data.train in "
                  "the config") -> IntentData:
    """``data.train``, refused (with ``missing``) when not given, or when holding out-of-scope rows."""
    if config.data.train is None:
        raise IntentbalError(missing)
    train = load_data(config, config.data.train, "train")
    refuse_oos_in_train(config, train)
    return train


def load_split(config: Config) -> Split:
    """The training, eval and validation data of ``data.train``, ``data.eval`` and ``data.validation``
    (see :func:`make_split`)."""
    labelled = load_training(config)
    validation = load_data(config, config.data.validation, "validation") if config.data.validation else None
    if validation is not None:
        check_shared_intents(labelled, validation, "validation", ignore=config.data.oos_label)
    eval_data = None
    if config.data.eval is not None:
        eval_data = load_data(config, config.data.eval, "eval")
        check_shared_intents(labelled, eval_data, "eval", ignore=config.data.oos_label)
    return make_split(config, labelled, eval_data=eval_data, validation=validation)


def make_split(
    config: Config, labelled: IntentData, *, eval_data: IntentData | None, validation: IntentData | None
) -> Split:
    """The roles of ``labelled``'s rows: eval is ``eval_data`` if given, else a stratified share of
    each intent (``data.eval_fraction``); validation is ``validation`` if given, else held out of
    the rest by :func:`intentbal.data.splits.hold_out_validation`. ``train`` and ``cv`` folds both
    split this way."""
    not_evaluable: list[str] = []
    train = labelled
    if eval_data is None:
        train, held, not_evaluable = stratified_split(labelled, fraction=config.data.eval_fraction, seed=config.seed)
        eval_data = held if len(held) else None
    held_out = False
    if validation is None:
        train, validation = hold_out_validation(config, train)
        held_out = validation is not None
    return Split(labelled=labelled, train=train, eval=eval_data, not_evaluable=not_evaluable, validation=validation,
                 validation_held_out=held_out)


def load_unlabeled(config: Config, *, held: set[str]) -> list[str] | None:
    """The distinct texts of ``data.unlabeled`` for self-training, without ``held`` (eval and
    validation texts: a teacher's label for one of them would leak it into training); None when
    no file is given."""
    if config.data.unlabeled is None:
        return None
    pool = load_data(config, config.data.unlabeled, "unlabeled", require_intent=False)
    texts = [t for t in dict.fromkeys(pool.texts) if t not in held]
    if not texts:
        raise IntentbalError(f"{pool.source}: expected unlabeled utterances for self-training, found none "
                             "(or only eval and validation texts); pass a file of chat-log utterances, or unset "
                             "data.unlabeled")
    return texts


def load_described(config: Config, train: IntentData) -> tuple[dict[str, str], list[str]]:
    """The descriptions (``data.descriptions``) of ``train``'s intents, and warnings: described intents
    that are not training intents (a typo, or a renamed intent), and how many training intents have
    no description. ``({}, [])`` when no file is given."""
    if config.data.descriptions is None:
        return {}, []
    given = load_descriptions(config.data.descriptions)
    intents = set(train.intents)
    warnings = []
    unknown = set(given) - intents
    if unknown:
        warnings.append(f"{config.data.descriptions}: {len(unknown)} described intent(s) are not training intents "
                        f"and are ignored: {few(unknown)}; check their spelling")
    undescribed = len(intents - set(given))
    if undescribed:
        warnings.append(f"{config.data.descriptions}: {undescribed} of {len(intents)} training intents have no "
                        "description" + (" (train.intent_names auto reads their names)"
                                         if config.train.intent_names == "auto" else ""))
    return {i: d for i, d in given.items() if i in intents}, warnings


def check_shared_intents(train: IntentData, other: IntentData, role: str, *, ignore: str | None = None) -> None:
    """Refuse ``other`` (eval or validation data) when none of its intents is a training intent:
    every score on it would be 0, so the mistake is a wrong file or column, found before training."""
    theirs = set(other.intents) - {ignore}
    if theirs and not theirs & set(train.intents):
        raise IntentbalError(
            f"{other.source}: expected {role} data with intents of the training data {train.source} "
            f"({few(set(train.intents))}), found none of them ({few(theirs)}); "
            f"pass the {role} file made for this training data, or the right --set data.intent_column"
        )


def refuse_oos_in_train(config: Config, train: IntentData) -> None:
    """Out-of-scope rows (``data.oos_label``) in training data are an error, not an intent to learn.

    Trained as an ordinary intent they would be one more class that has to cover everything a
    chatbot is not for; intentbal catches out-of-scope inputs with the fallback threshold instead.
    """
    oos = config.data.oos_label
    found = sum(intent == oos for intent in train.intents) if oos is not None else 0
    if found:
        raise IntentbalError(
            f"{train.source}: expected no out-of-scope rows in training data, found {found} with intent {oos!r} "
            "(data.oos_label); move them to the validation or eval data, where they choose the fallback "
            "threshold, or unset data.oos_label to train them as an ordinary intent"
        )


def run_inputs(config: Config) -> list[str | Path | None]:
    """The paths a run reads (config file, data and model): an output may never be, or hold, one of them."""
    d = config.data
    return [config.source, d.train, d.eval, d.validation, d.unlabeled, d.descriptions, config.model.name_or_path]


def profile_of(
    config: Config, train: IntentData, eval_intents: Sequence[str] = (), *, eval_texts: Sequence[str] | None = None,
) -> Profile:
    """The profile of ``train`` with the config's thresholds; out-of-scope eval rows are never trained."""
    p = config.profile
    eval_intents = [i for i in eval_intents if i != config.data.oos_label]
    return profile_intents(train.texts, train.intents, eval_intents=eval_intents, eval_texts=eval_texts,
                           rare_max=p.rare_max, frequent_min=p.frequent_min, min_count=p.min_count)


def few(names: set[str]) -> str:
    """A short listing of ``names`` for an error message."""
    return listing(sorted(names), limit=4) or "none"
