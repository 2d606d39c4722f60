"""The jobs behind each CLI command: one public function per command.

Each job reads its inputs, calls the pure core and writes its outputs atomically.
Nothing here prints; progress is reported through an optional callback.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import intentbal
from intentbal.audit import AuditResult, Change, audit_report, compare_reports, comparison_scope
from intentbal.augment import AugmentResult, augment_rare, cap_intents, resolve_target
from intentbal.card import card_name, model_card, recipe
from intentbal.config import Config, config_to_yaml
from intentbal.data import IntentData, load_intents, stratified_split
from intentbal.errors import IntentbalError
from intentbal.evaluate import Report, evaluate_predictions
from intentbal.fallback import FallbackAnalysis, analyse_fallback, choose_threshold
from intentbal.outputs import (
    atomic_dir,
    atomic_write_bytes,
    atomic_write_text,
    check_output_dir,
    check_output_file,
    json_text,
)
from intentbal.overlap import Overlap, overlap_with_hashes, text_hashes, train_eval_overlap
from intentbal.profile import Profile, profile_intents
from intentbal.report import (
    RASA_SUFFIXES,
    TABLE_SUFFIXES,
    listing,
    prediction_columns,
    prediction_rows,
    predictions_csv,
    rasa_nlu_yaml,
    write_report,
    write_table,
)
from intentbal.webreport import render_html

if TYPE_CHECKING:
    import numpy as np

    from intentbal.predict import Backend, IntentClassifier
    from intentbal.train import TrainResult

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Split:
    train: IntentData
    eval: IntentData | None
    not_evaluable: list[str]  # intents too small to hold any example out (they stay in train)
    validation: IntentData | None = None
    validation_held_out: bool = False  # validation was held out of the training data
    labelled: IntentData | None = None  # every row of data.train, before any hold-out


@dataclass(frozen=True)
class TrainRun:
    output_dir: Path
    profile: Profile
    augmentation: AugmentResult | None
    report: Report | None
    train_metrics: dict[str, Any]
    warnings: list[str]
    adjustment: dict[str, Any] | None = None  # the logit adjustment's tau and where it was chosen
    refit: dict[str, object] | None = None  # rows the shipped model was refit on, when it was (train.refit)
    fallback: dict[str, object] | None = None  # the fallback saved with the model: threshold, chosen_on, intent


@dataclass(frozen=True)
class Refit:
    """The shipped model when it was refit on every row of ``data.train`` after the report."""

    trained: TrainResult
    data: IntentData  # every labelled training row, before augmentation
    augmented: AugmentResult | None
    held_out: int  # rows the evaluated model did not train on

    def note(self) -> dict[str, object]:
        """What the report and the terminal say about it."""
        return {"rows": len(self.data), "held_out_rows": self.held_out,
                "reported_on": "model trained without the held-out rows"}


VALIDATION_MIN_COUNT = 5  # intents with fewer examples keep them all for training


def load_split(config: Config) -> Split:
    """The training, eval and validation data.

    Eval is ``data.eval`` if given, else a stratified split of train. Validation is
    ``data.validation`` if given; else, when the recipe has a choice to make on it (the
    logit adjustment on ``auto``), ``data.validation_fraction`` of each intent with at least
    ``VALIDATION_MIN_COUNT`` examples is held out of train.
    """
    if config.data.train is None:
        raise IntentbalError("no training data: expected --train PATH or data.train in the config")
    train = labelled = load_data(config, config.data.train, "train")
    refuse_oos_in_train(config, train)
    validation = load_data(config, config.data.validation, "validation") if config.data.validation else None
    not_evaluable: list[str] = []
    if validation is not None:
        check_shared_intents(train, validation, "validation", ignore=config.data.oos_label)
    if config.data.eval is not None:
        loaded = load_data(config, config.data.eval, "eval")
        check_shared_intents(train, loaded, "eval", ignore=config.data.oos_label)
        eval_data: IntentData | None = loaded
    else:
        train, eval_data, not_evaluable = stratified_split(train, fraction=config.data.eval_fraction,
                                                           seed=config.seed)
        eval_data = eval_data if len(eval_data) else None
    held_out = False
    if validation is None and config.data.validation_fraction > 0 and config.train.logit_adjustment == "auto":
        train, validation, _ = stratified_split(train, fraction=config.data.validation_fraction,
                                                seed=config.seed + 1, min_count=VALIDATION_MIN_COUNT)
        held_out = True
        validation = validation if len(validation) else None
    return Split(train, eval_data, not_evaluable, validation, validation_held_out=held_out and validation is not None,
                 labelled=labelled)


def check_shared_intents(train: IntentData, other: IntentData, role: str, *, ignore: str | None = None) -> None:
    """Refuse ``other`` (eval or validation data) when none of its intents is a training intent:
    every score on it would be 0, so the mistake is a wrong file or column, found before training."""
    theirs = set(other.intents) - {ignore}
    if theirs and not theirs & set(train.intents):
        raise IntentbalError(
            f"{other.source}: expected {role} data with intents of the training data {train.source} "
            f"({_few(set(train.intents))}), found none of them ({_few(theirs)}); "
            f"pass the {role} file made for this training data, or the right --set data.intent_column"
        )


AUGMENT_COLUMNS = ["text", "intent", "source_text", "augmenter"]


def run_inputs(config: Config) -> list[str | Path | None]:
    """The paths a run reads (data and model): an output may never be, or hold, one of them."""
    d = config.data
    return [d.train, d.eval, d.validation, config.model.name_or_path]


def profile_data(config: Config, *, output: Path | None = None, overwrite: bool = False) -> Profile:
    """Profile ``data.train`` (checking ``data.eval``'s intents and texts against it when given:
    intents missing from train, rows also in train); with ``output`` (a ``.json`` file, replaced
    only with ``overwrite``), also write it there as JSON."""
    if config.data.train is None:
        raise IntentbalError("no data to profile: expected a DATA path")
    if output is not None:
        check_output_file(output, suffixes=(".json",), inputs=run_inputs(config), overwrite=overwrite)
    train = load_data(config, config.data.train, "train")
    refuse_oos_in_train(config, train)
    eval_data = load_data(config, config.data.eval, "eval") if config.data.eval else None
    profile = _profile(config, train, eval_data.intents if eval_data else (),
                       eval_texts=eval_data.texts if eval_data else None)
    if output is not None:
        atomic_write_text(output, json_text(profile.to_dict()))
    return profile


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


def augment_file(
    config: Config, *, output: Path, overwrite: bool = False, progress: Progress | None = None
) -> AugmentResult:
    """Augment the rare intents of ``data.train`` and write the rows to ``output``, in the format
    its suffix names (.csv, .jsonl, .parquet, or Rasa NLU .yml/.yaml); an existing file is replaced
    only with ``overwrite``.

    Original rows come first with empty provenance; synthetic rows name their source
    text and augmenter.
    """
    if config.data.train is None:
        raise IntentbalError("no data to augment: expected a DATA path")
    check_output_file(output, suffixes=(*TABLE_SUFFIXES, *RASA_SUFFIXES), inputs=run_inputs(config),
                      overwrite=overwrite)
    result = augment_training(config, load_data(config, config.data.train, "train"), progress, force=True)
    assert result is not None  # force=True always augments
    if output.suffix.lower() in RASA_SUFFIXES:
        atomic_write_text(output, rasa_nlu_yaml(_augmented_records(result)))
    else:
        write_table(output, _augmented_records(result), columns=AUGMENT_COLUMNS)
    return result


def train_run(config: Config, *, progress: Progress | None = None, resume: bool = False) -> TrainRun:
    """Profile, augment, fine-tune and evaluate; write everything to ``config.output_dir``.

    The folder appears only when complete: ``model/`` (a standard Hugging Face folder),
    ``config.yaml``, ``manifest.json``, ``profile.json``, ``augmentation.jsonl``,
    ``train_metrics.json`` and, when there is eval data, ``report.json``, ``report.md``,
    ``per_intent.csv``, ``predictions.csv``, ``fallback_curve.json``, ``report.html`` and
    ``plots/``. Checkpoints go to a hidden folder beside
    it, which ``resume=True`` continues from and a finished run removes.

    When rows of ``data.train`` were held out (for eval or validation) and ``train.refit`` is on,
    tau, the fallback threshold and the report come from the model trained without them, and
    ``model/`` holds a refit on every row of ``data.train`` (same recipe and seed, the same tau).
    """
    from intentbal import distributed
    from intentbal.train import check_trainable

    check_output_dir(config.output_dir, kind="train", inputs=run_inputs(config))
    distributed.setup()
    main = distributed.is_main()
    split = load_split(config)  # every rank checks the data; only rank 0 draws the augmentation
    check_trainable(split.train)
    profile = _profile(config, split.train, split.eval.intents if split.eval else ())
    augmented = distributed.share(augment_training(config, split.train, progress, force=False) if main else None)
    checkpoints = checkpoint_dir(config.output_dir)
    everything = refit_rows(config, split)
    # Phase 1 trains the model that tau, the fallback threshold and the report are measured on. With a
    # refit it is kept in the checkpoints when done, so a crash during the refit does not lose it.
    train_rows = augmented.data if augmented else split.train
    trained = _fit(config, train_rows, checkpoints / "evaluated" if everything else checkpoints,
                   keep=everything is not None, resume=resume, progress=progress if main else None)
    refit, shipped_rows = None, train_rows
    if everything is not None:  # phase 2: the same recipe and seed on every training row, on every rank
        stage = _renamed(progress if main else None, "(refit on all rows)")
        again = distributed.share(augment_training(config, everything, stage, force=False) if main else None)
        shipped_rows = again.data if again else everything
        refit = Refit(_fit(config, shipped_rows, checkpoints / "refit", keep=False, resume=resume, progress=stage),
                      everything, again, len(everything) - len(split.train))
    shipped = refit.trained if refit else trained
    metrics: dict[str, Any] = {**_fit_metrics(shipped, len(shipped_rows)), "processes": distributed.world_size(),
               "refit": refit is not None}
    if refit is not None:
        metrics["evaluated_fit"] = _fit_metrics(trained, len(train_rows))
    report, warnings, adjustment, fallback = None, list(shipped.warnings), None, None
    if main:
        adjustment = adjust_logits(config, trained, profile.counts(), split.validation, refit=refit,
                                   validation_name="held out of train" if split.validation_held_out else "validation")
        report, fallback = _write_run(config, trained, profile, augmented, split, metrics, warnings, adjustment,
                                      refit)
        shutil.rmtree(checkpoints, ignore_errors=True)
    distributed.teardown()
    return TrainRun(config.output_dir, profile, augmented, report, metrics, warnings, adjustment,
                    refit.note() if refit else None, fallback)


def refit_rows(config: Config, split: Split) -> IntentData | None:
    """Every labelled row of ``data.train`` when ``train.refit`` is on and ``split`` held some of them
    out of training (for eval or validation); else None, and the evaluated model is the one shipped.
    A ``data.eval`` or ``data.validation`` file is never among them."""
    if not config.train.refit or split.labelled is None:
        return None
    return split.labelled if len(split.labelled) > len(split.train) else None


def _fit(
    config: Config, data: IntentData, folder: Path, *, keep: bool, resume: bool, progress: Progress | None,
) -> TrainResult:
    """``train_soup`` on ``data``, checkpointing in ``folder``. With ``keep`` the finished fit is kept
    beside it (``folder.safetensors``), and a resume loads it instead of training it again; only
    when checkpoints are on and it ran at least ``train.save_steps`` steps (a shorter fit is never
    checkpointed either, so a failed short run leaves nothing behind)."""
    from intentbal import distributed
    from intentbal.soup import train_soup
    from intentbal.train import keep_fit, kept_fit

    m, t, seed = config.model, config.train, config.seed
    kept = folder.with_name(folder.name + ".safetensors")
    if keep and resume and (found := kept_fit(kept, data, model_config=m, train_config=t, seed=seed)) is not None:
        return found
    trained = train_soup(data, model_config=m, train_config=t, seed=seed, progress=progress,
                         checkpoint_dir=folder, resume=resume)
    if keep:
        if t.save_steps and trained.steps >= t.save_steps:
            keep_fit(kept, trained, data, model_config=m, train_config=t, seed=seed)
        if distributed.is_main():
            shutil.rmtree(folder, ignore_errors=True)  # its mid-training state is no longer needed
    return trained


def _fit_metrics(trained: TrainResult, rows: int) -> dict[str, float]:
    return {
        "train_seconds": round(trained.train_seconds, 3),
        "train_samples": trained.train_samples,
        "train_samples_per_second": round(trained.train_samples_per_second, 3),
        "steps": trained.steps,
        "resumed_from_step": trained.resumed_from,
        "train_rows": rows,
    }


def _renamed(progress: Progress | None, suffix: str) -> Progress | None:
    """``progress`` with ``suffix`` after each stage's name: the refit's bars are new ones."""
    return None if progress is None else (lambda stage, done, total: progress(f"{stage} {suffix}", done, total))


def adjust_logits(
    config: Config, trained: TrainResult, counts: dict[str, int], validation: IntentData | None,
    *, validation_name: str = "validation", refit: Refit | None = None,
) -> dict[str, object] | None:
    """Choose ``tau`` (see :mod:`intentbal.adjust`) with ``trained`` and write the adjustment into it
    and, with ``refit``, into the refit model too.

    The prior is each intent's share of the training data before augmentation: ``counts`` for
    ``trained``, the refit's own rows for the refit model.
    """
    import numpy as np

    from intentbal import adjust
    from intentbal.predict import IntentClassifier

    setting = config.train.logit_adjustment
    prior = adjust.log_prior(counts, trained.intents)
    if setting != "auto":
        tau, chosen_on = float(setting), "given"
    elif validation is not None:
        clf = IntentClassifier.from_trained(trained, max_length=config.model.max_length,
                                           batch_size=config.evaluate.batch_size)
        log_probs = np.log(clf.proba(validation.texts) + 1e-12)
        tau, chosen_on = adjust.choose_tau(log_probs, validation.intents, trained.intents, prior), validation_name
    else:
        tau, chosen_on = adjust.DEFAULT_TAU, "default"
    if tau:
        adjust.bake(trained.model, prior, tau)
        if refit is not None:
            counted = Counter(refit.data.intents)
            adjust.bake(refit.trained.model, adjust.log_prior(counted, refit.trained.intents), tau)
    return {"tau": tau, "chosen_on": chosen_on}


def checkpoint_dir(output_dir: Path) -> Path:
    """Where the checkpoints of a run writing ``output_dir`` live: a hidden folder beside it."""
    return output_dir.parent / f".{output_dir.name}.checkpoint"


def _write_run(
    config: Config,
    trained: TrainResult,
    profile: Profile,
    augmented: AugmentResult | None,
    split: Split,
    metrics: dict[str, Any],
    warnings: list[str],
    adjustment: dict[str, Any] | None,
    refit: Refit | None = None,
) -> tuple[Report | None, dict[str, object] | None]:
    """Write the run folder; the model folder holds ``refit``'s model when there is one, the report
    is ``trained``'s. Returns the report (None without eval data) and the fallback saved with the
    model (None when none may be: see :func:`_fallback_threshold`)."""
    from intentbal.manifest import build_manifest
    from intentbal.predict import IntentClassifier

    counts = profile.counts()
    after = augmented.counts() if augmented else counts
    shipped, shipped_aug = (refit.trained, refit.augmented) if refit else (trained, augmented)
    shipped_data = refit.data if refit else split.train
    shipped_counts = profile_intents(shipped_data.texts, shipped_data.intents).counts() if refit else counts
    meta = {"train_counts": shipped_counts, "augmented_counts": shipped_aug.counts() if shipped_aug else shipped_counts,
            "max_length": config.model.max_length,
            "class_weights": dict(zip(shipped.intents, shipped.class_weights)),
            "logit_adjustment": adjustment, "refit": refit is not None, "intentbal_version": intentbal.__version__,
            "recipe": recipe(config), "train_text_sha1": text_hashes(shipped_data.texts)}
    clf = IntentClassifier.from_trained(trained, max_length=config.model.max_length,
                                       batch_size=config.evaluate.batch_size, meta=meta)
    report, saved = None, None
    with atomic_dir(config.output_dir, kind="train") as out:
        atomic_write_text(out / "config.yaml", config_to_yaml(config))
        atomic_write_text(out / "manifest.json", json_text(build_manifest(config)))
        atomic_write_text(out / "profile.json", json_text(profile.to_dict()))
        write_table(out / "augmentation.jsonl", _augmented_records(shipped_aug, synthetic_only=True),
                    columns=AUGMENT_COLUMNS)
        atomic_write_text(out / "train_metrics.json", json_text(metrics))
        if split.eval is not None:
            overlap = train_eval_overlap(split.train.texts, split.eval.texts, split.eval.intents)
            report, fallback = _evaluate(config, clf, split.eval, (counts, after), out, warnings, split.validation,
                                         overlap, refit=refit.note() if refit else None)
            chosen: tuple[float, str, bool] | None = (fallback.threshold, fallback.chosen_on, fallback.deployable)
        else:
            chosen = _fallback_threshold(config, clf, split.validation)
        if chosen is not None and chosen[2]:
            saved = {"threshold": chosen[0], "chosen_on": chosen[1], "intent": config.evaluate.fallback_intent}
        meta["fallback"] = saved
        IntentClassifier.from_trained(shipped, max_length=config.model.max_length, meta=meta).save(out / "model")
        atomic_write_text(out / "model" / "README.md", _card(config, meta, report, _eval_name(config)))
    return report, saved


def evaluate_model(
    config: Config, *, model_dir: Path, data: Path, output: Path, backend: Backend = "auto",
    update_card: bool = False, progress: Progress | None = None,
) -> Report:
    """Evaluate a trained model folder on ``data``; write the report files to ``output``.

    With ``update_card``, also rewrite the model card ``model_dir/README.md`` from this evaluation
    (nothing else in ``model_dir`` changes). ``output`` must be new, empty or an earlier evaluate
    report (see :func:`intentbal.outputs.check_output_dir`), never a train run or a folder holding
    an input.
    ``progress("predict", done, total)`` follows the prediction of ``data``.
    """
    check_output_dir(output, kind="evaluate", inputs=[model_dir, data, config.data.validation])
    clf = _classifier(config, model_dir, backend)
    if update_card and not clf.meta:
        raise IntentbalError(f"model {model_dir}: expected an intentbal model folder (with intentbal.json) for "
                             "--update-card, found none; evaluate it without --update-card")
    eval_data = load_data(config, data, "eval")
    known = set(clf.intents)
    if not known & set(eval_data.intents):
        raise IntentbalError(
            f"model {model_dir}: its intents ({_few(known)}) share none with {data} ({_few(set(eval_data.intents))}); "
            "pass the model trained for this data, or the right --set data.intent_column"
        )
    counts = clf.meta.get("train_counts", {})
    validation = load_data(config, config.data.validation, "validation") if config.data.validation else None
    hashes = clf.meta.get("train_text_sha1")  # absent in folders saved before intentbal kept them
    overlap = overlap_with_hashes(hashes, eval_data.texts, eval_data.intents) if isinstance(hashes, dict) else None
    with atomic_dir(output, kind="evaluate") as out:
        report = _evaluate(config, clf, eval_data, (counts, clf.meta.get("augmented_counts", counts)), out, [],
                           validation, overlap, progress=progress)[0]
        if update_card:  # inside the block: a card that cannot be written leaves no report either
            atomic_write_text(Path(model_dir) / "README.md", _card(config, clf.meta, report, str(data),
                                                                   model_dir=Path(model_dir)))
    return report


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
    :func:`intentbal.report.prediction_rows`). Returns the number of rows.
    """
    if top_k is not None and top_k < 1:
        raise IntentbalError(f"--top-k: expected a whole number of at least 1, found {top_k}")
    check_output_file(output, suffixes=TABLE_SUFFIXES, inputs=[model_dir, input_path], overwrite=overwrite)
    clf = _classifier(config, model_dir, backend)
    threshold = fallback_threshold if fallback_threshold is not None else config.evaluate.fallback_threshold
    if threshold is not None:
        if not clf.meta.get("fallback"):  # a threshold saved with the model keeps its intent's name
            clf.fallback_intent = config.evaluate.fallback_intent
        clf.fallback_threshold = threshold
    data = load_data(config, input_path, "test", require_intent=False)
    probs = clf.proba(data.texts, progress=progress)
    predicted, confidence = clf.answer(probs)
    gold = data.intents if data.labelled else None
    rows = prediction_rows(data.texts, predicted, confidence, gold=gold,
                           rankings=clf.ranking(probs, top_k) if top_k else None,
                           flat=output.suffix.lower() != ".jsonl")
    write_table(output, rows, columns=list(rows[0]) if rows else prediction_columns(labelled=gold is not None))
    return len(data)


def _card(
    config: Config, meta: dict[str, object], report: Report | None, eval_name: str | None,
    *, model_dir: Path | None = None,
) -> str:
    return model_card(name=card_name(model_dir or config.output_dir / "model"), meta=meta, report=report,
                      eval_name=eval_name, rare_max=config.profile.rare_max, frequent_min=config.profile.frequent_min)


def _eval_name(config: Config) -> str | None:
    if config.data.eval is not None:
        return str(config.data.eval)
    return f"{config.data.eval_fraction:g} of each intent held out of {config.data.train} (seed {config.seed})"


def _classifier(config: Config, model_dir: Path, backend: Backend = "auto") -> IntentClassifier:
    from intentbal.predict import IntentClassifier

    return IntentClassifier.load(model_dir, config=config.model, batch_size=config.evaluate.batch_size,
                                 backend=backend)


def _few(names: set[str]) -> str:
    return listing(sorted(names), limit=4) or "none"


def load_data(config: Config, path: Path, split: str, *, require_intent: bool = True) -> IntentData:
    """``path`` loaded with the config's column names."""
    return load_intents(
        path,
        text_column=config.data.text_column,
        intent_column=config.data.intent_column,
        split=split,
        require_intent=require_intent,
    )


def _profile(
    config: Config, train: IntentData, eval_intents: Sequence[str], *, eval_texts: Sequence[str] | None = None
) -> Profile:
    p = config.profile
    eval_intents = [i for i in eval_intents if i != config.data.oos_label]  # out-of-scope is never trained
    return profile_intents(
        train.texts, train.intents, eval_intents=eval_intents, eval_texts=eval_texts,
        rare_max=p.rare_max, frequent_min=p.frequent_min, min_count=p.min_count,
    )


def augment_training(
    config: Config, train: IntentData, progress: Progress | None, *, force: bool
) -> AugmentResult | None:
    """``train`` rebalanced per ``config.augment``: frequent intents capped at ``max_per_intent``,
    then rare intents augmented (always, with ``force``). ``None`` when neither applies."""
    a = config.augment
    if a.max_per_intent is not None:
        train = cap_intents(train, max_count=a.max_per_intent, seed=config.seed)
    if not (a.enabled or force):
        return AugmentResult(train, [], 0) if a.max_per_intent is not None else None
    counts = profile_intents(train.texts, train.intents).counts()
    target = resolve_target(counts, target_count=a.target_count, target_fraction=a.target_fraction)
    return augment_rare(
        train, target=target, augmenters=a.augmenters, seed=config.seed,
        max_attempts=a.max_attempts, progress=progress,
    )


def _augmented_records(result: AugmentResult | None, *, synthetic_only: bool = False) -> list[dict[str, str]]:
    """The original rows with empty provenance (unless ``synthetic_only``), then the synthetic ones."""
    rows = [] if synthetic_only or result is None else [
        {"text": t, "intent": i, "source_text": "", "augmenter": ""}
        for t, i in zip(result.data.texts[: len(result.data) - len(result.synthetic)], result.data.intents)
    ]
    return rows + [asdict(s) for s in (result.synthetic if result else [])]


def _evaluate(
    config: Config,
    clf: IntentClassifier,
    data: IntentData,
    counts: tuple[dict[str, int], dict[str, int]],
    out: Path,
    warnings: list[str],
    validation: IntentData | None = None,
    overlap: Overlap | None = None,
    *,
    refit: dict[str, object] | None = None,
    progress: Progress | None = None,
) -> tuple[Report, FallbackAnalysis]:
    """Predict ``data``, score it, weigh the fallback threshold, and write every report file.

    The scores are those of the model's own decisions, without any fallback; the report's
    summary adds ``oos_examples``, ``fallback_threshold`` and ``oos_caught`` (None without
    out-of-scope examples), ``overlap`` (eval rows that are training rows; null when the
    training texts are unknown) and, with ``refit``, a note that the model measured is not the
    one shipped.
    """
    probs = clf.proba(data.texts, progress=progress)
    predicted, confidence = clf.decide(probs)
    if clf.truncated:
        warnings.append(f"{clf.truncated} eval text(s) longer than {clf.max_length} tokens were truncated")
    oos = config.data.oos_label
    keep = [i for i, g in enumerate(data.intents) if g != oos]
    if not keep:
        raise IntentbalError(f"{data.source}: expected in-scope examples, found only {oos!r} rows")
    gold_in = [data.intents[i] for i in keep]
    report = evaluate_predictions(
        gold_in, [predicted[i] for i in keep], train_counts=counts[0], augmented_counts=counts[1],
        probabilities=probs[keep], prob_intents=clf.intents,
        rare_max=config.profile.rare_max, frequent_min=config.profile.frequent_min,
        recall_threshold=config.evaluate.recall_threshold, min_support=config.evaluate.min_support,
    )
    chosen = _fallback_threshold(config, clf, validation, data, predicted, confidence)
    assert chosen is not None  # with eval data there is always a threshold to choose on it
    threshold, chosen_on, deployable = chosen
    fallback = analyse_fallback(data.intents, predicted, confidence, threshold=threshold, chosen_on=chosen_on,
                                oos_label=oos, deployable=deployable)
    report.summary.update({"oos_examples": len(data) - len(keep), "fallback_threshold": threshold,
                           "oos_caught": fallback.oos_recall,
                           "overlap": overlap.to_dict() if overlap is not None else None})
    if refit is not None:
        report.summary["refit"] = refit
    figures = {}
    if config.evaluate.plots:
        figures = _figures(report, gold_in, [predicted[i] for i in keep], probs[keep], clf.intents, fallback)
        for name, png in figures.items():
            atomic_write_bytes(out / "plots" / f"{name}.png", png)
        atomic_write_text(out / "report.html", render_html(report, figures=figures, fallback=fallback.summary()))
    write_report(out, report, extra={"fallback": fallback.summary()}, figures=list(figures))
    atomic_write_text(out / "fallback_curve.json", json_text(fallback.curve))
    atomic_write_text(out / "predictions.csv", predictions_csv(data.texts, predicted, confidence, data.intents))
    return report, fallback


def _fallback_threshold(
    config: Config,
    clf: IntentClassifier,
    validation: IntentData | None,
    data: IntentData | None = None,
    predicted: list[str] | None = None,
    confidence: list[float] | None = None,
) -> tuple[float, str, bool] | None:
    """``(threshold, chosen_on, deployable)``: the fallback threshold and whether it may be saved
    with a model; None when there is nothing to choose it on.

    It is ``evaluate.fallback_threshold`` when set ("given"), else chosen on the validation
    data (unless only ``data`` has out-of-scope examples), else the one saved with the model
    ("model"), else chosen on ``data`` ("eval"). Only a given threshold
    or one chosen on out-of-scope examples is deployable: without them the threshold only prices
    the fallback (on BANKING77-LT the 95%-precision one would send 40% of correct answers to
    it), so saving it would change a model's answers unasked.
    """
    e, oos = config.evaluate, config.data.oos_label

    def has_oos(part: IntentData | None) -> bool:
        return oos is not None and part is not None and oos in part.intents

    if e.fallback_threshold is not None:
        return e.fallback_threshold, "given", True
    if validation is not None and (has_oos(validation) or not has_oos(data)):
        v_pred, v_conf = clf.decide(clf.proba(validation.texts))
        threshold = choose_threshold(validation.intents, v_pred, v_conf, oos_label=oos,
                                     target_precision=e.fallback_precision)
        return threshold, "validation", has_oos(validation)
    if clf.fallback_threshold is not None:
        return clf.fallback_threshold, "model", True
    if data is None or predicted is None or confidence is None:
        return None
    threshold = choose_threshold(data.intents, predicted, confidence, oos_label=oos,
                                 target_precision=e.fallback_precision)
    return threshold, "eval", has_oos(data)


def _figures(
    report: Report, gold: list[str], predicted: list[str], probs: np.ndarray,
    prob_intents: list[str], fallback: FallbackAnalysis,
) -> dict[str, bytes]:
    from intentbal import plots

    rare = report.summary["tail_intents"][:8]
    return {
        "recall_vs_count": plots.recall_vs_count(report),
        "confusions": plots.confusion_matrix(gold, predicted),
        "pr_rare": plots.pr_curves(gold, probs, prob_intents, rare),
        "fallback": plots.fallback_curves(fallback.curve, rare, fallback.threshold),
    }


def audit_model(
    config: Config,
    *,
    model_dir: Path,
    data: Path,
    min_recall: float,
    min_tail_recall: float | None = None,
    baseline: Path | None = None,
    output: Path | None = None,
) -> tuple[Report, AuditResult]:
    """Evaluate with ``min_recall`` as the threshold and judge the result (see :mod:`intentbal.audit`).

    The report files go to ``output`` when given.
    """
    import tempfile

    if output is not None:  # the baseline is an input too: its folder is never replaced
        check_output_dir(output, kind="evaluate", inputs=[model_dir, data, config.data.validation, baseline])
    old = read_report(baseline) if baseline is not None else None
    if old is not None:  # refused before evaluating: the intents it will evaluate are the eval data's
        evaluated = dict.fromkeys(i for i in load_data(config, data, "eval").intents if i != config.data.oos_label)
        placeholder = {"intents": [{"intent": i, "recall": 1.0} for i in evaluated]}  # any recall: only presence counts
        _check_comparable(old, placeholder, f"baseline {baseline}", str(data))
    evaluate = config.evaluate.model_copy(update={"recall_threshold": min_recall})
    config = config.model_copy(update={"evaluate": evaluate})
    if output is None:
        with tempfile.TemporaryDirectory() as tmp:
            report = evaluate_model(config, model_dir=model_dir, data=data, output=Path(tmp) / "report")
    else:
        report = evaluate_model(config, model_dir=model_dir, data=data, output=output)
    return report, audit_report(report.to_dict(), min_tail_recall=min_tail_recall, baseline=old)


def compare_files(a: Path, b: Path) -> list[Change]:
    """Per-intent recall changes from report file ``a`` to report file ``b``; refused when no
    intent is evaluated in both."""
    return _check_comparable(read_report(a), read_report(b), str(a), str(b))


def _check_comparable(a: dict, b: dict, name_a: str, name_b: str) -> list[Change]:
    changes = compare_reports(a, b)
    scope = comparison_scope(changes)
    if not scope.shared:
        raise IntentbalError(
            f"{name_b}: expected intents evaluated in {name_a} too, found none in common "
            f"({name_a}: {_few(set(scope.only_a))}; {name_b}: {_few(set(scope.only_b))}); "
            "compare reports of models for the same intents"
        )
    return changes


def read_report(path: Path) -> dict:
    """A ``report.json`` written by intentbal, checked for the fields the audit needs."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IntentbalError(f"{path}: report not found; pass OUTPUT/report.json of an earlier run") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntentbalError(f"{path}: expected an intentbal report.json, found unreadable JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("intents"), list) or "summary" not in doc:
        raise IntentbalError(
            f"{path}: expected an intentbal report.json with 'summary' and 'intents', found other JSON")
    return doc
