"""The jobs behind each CLI command: one public function per command.

Each job reads its inputs, calls the pure core and writes its outputs atomically.
Nothing here prints; progress is reported through an optional callback.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import intentbal
from intentbal.audit import AuditResult, Change, audit_report, compare_reports
from intentbal.augment import AugmentResult, augment_rare, cap_intents, resolve_target
from intentbal.card import card_name, model_card, recipe
from intentbal.config import Config, config_to_yaml
from intentbal.data import IntentData, load_intents, stratified_split
from intentbal.errors import IntentbalError
from intentbal.evaluate import Report, evaluate_predictions
from intentbal.fallback import FallbackAnalysis, analyse_fallback, choose_threshold
from intentbal.outputs import atomic_dir, atomic_write_bytes, atomic_write_text, check_output_dir, json_text
from intentbal.profile import Profile, profile_intents
from intentbal.report import predictions_csv, write_report
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


@dataclass(frozen=True)
class TrainRun:
    output_dir: Path
    profile: Profile
    augmentation: AugmentResult | None
    report: Report | None
    train_metrics: dict[str, float]
    warnings: list[str]
    adjustment: dict[str, object] | None = None  # the logit adjustment's tau and where it was chosen
    fallback: dict[str, object] | None = None  # the fallback saved with the model: threshold, chosen_on, intent


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
    train = load_data(config, config.data.train, "train")
    refuse_oos_in_train(config, train)
    validation = load_data(config, config.data.validation, "validation") if config.data.validation else None
    not_evaluable: list[str] = []
    if config.data.eval is not None:
        eval_data: IntentData | None = load_data(config, config.data.eval, "eval")
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
    return Split(train, eval_data, not_evaluable, validation, validation_held_out=held_out and validation is not None)


def profile_data(config: Config, *, output: Path | None = None) -> Profile:
    """Profile ``data.train`` (checking ``data.eval``'s intents against it when given);
    with ``output``, also write it there as JSON."""
    if config.data.train is None:
        raise IntentbalError("no data to profile: expected a DATA path")
    train = load_data(config, config.data.train, "train")
    refuse_oos_in_train(config, train)
    eval_intents = load_data(config, config.data.eval, "eval").intents if config.data.eval else ()
    profile = _profile(config, train, eval_intents)
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


def augment_file(config: Config, *, output: Path, progress: Progress | None = None) -> AugmentResult:
    """Augment the rare intents of ``data.train`` and write the rows to ``output`` (.csv or .jsonl).

    Original rows come first with empty provenance; synthetic rows name their source
    text and augmenter.
    """
    if output.suffix.lower() not in (".csv", ".jsonl"):
        raise IntentbalError(f"--output {output}: expected a .csv or .jsonl file name, found {output.suffix or 'none'}")
    if config.data.train is None:
        raise IntentbalError("no data to augment: expected a DATA path")
    result = augment_training(config, load_data(config, config.data.train, "train"), progress, force=True)
    atomic_write_text(output, _augmented_rows(result, jsonl=output.suffix.lower() == ".jsonl"))
    return result


def train_run(config: Config, *, progress: Progress | None = None, resume: bool = False) -> TrainRun:
    """Profile, augment, fine-tune and evaluate; write everything to ``config.output_dir``.

    The folder appears only when complete: ``model/`` (a standard Hugging Face folder),
    ``config.yaml``, ``manifest.json``, ``profile.json``, ``augmentation.jsonl``,
    ``train_metrics.json`` and, when there is eval data, ``report.json``, ``report.md``,
    ``per_intent.csv``, ``predictions.csv``, ``fallback_curve.json``, ``report.html`` and
    ``plots/``. Checkpoints go to a hidden folder beside
    it, which ``resume=True`` continues from and a finished run removes.
    """
    from intentbal import distributed
    from intentbal.soup import train_soup
    from intentbal.train import check_trainable

    check_output_dir(config.output_dir)
    distributed.setup()
    main = distributed.is_main()
    split = load_split(config)  # every rank checks the data; only rank 0 draws the augmentation
    check_trainable(split.train)
    profile = _profile(config, split.train, split.eval.intents if split.eval else ())
    augmented = distributed.share(augment_training(config, split.train, progress, force=False) if main else None)
    checkpoints = checkpoint_dir(config.output_dir)
    trained = train_soup(augmented.data if augmented else split.train, model_config=config.model,
                         train_config=config.train, seed=config.seed, progress=progress if main else None,
                         checkpoint_dir=checkpoints, resume=resume)
    metrics = {
        "train_seconds": round(trained.train_seconds, 3),
        "train_samples": trained.train_samples,
        "train_samples_per_second": round(trained.train_samples_per_second, 3),
        "steps": trained.steps,
        "resumed_from_step": trained.resumed_from,
        "processes": distributed.world_size(),
    }
    report, warnings, adjustment, fallback = None, list(trained.warnings), None, None
    if main:
        adjustment = adjust_logits(config, trained, profile.counts(), split.validation,
                                   validation_name="held out of train" if split.validation_held_out else "validation")
        report, fallback = _write_run(config, trained, profile, augmented, split, metrics, warnings, adjustment)
        shutil.rmtree(checkpoints, ignore_errors=True)
    distributed.teardown()
    return TrainRun(config.output_dir, profile, augmented, report, metrics, warnings, adjustment, fallback)


def adjust_logits(
    config: Config, trained: TrainResult, counts: dict[str, int], validation: IntentData | None,
    *, validation_name: str = "validation",
) -> dict[str, object] | None:
    """Choose ``tau`` (see :mod:`intentbal.adjust`) and write the adjustment into the model.

    The prior is each intent's share of the training data before augmentation.
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
    metrics: dict[str, float],
    warnings: list[str],
    adjustment: dict[str, object] | None,
) -> tuple[Report | None, dict[str, object] | None]:
    """Write the run folder; returns the report (None without eval data) and the fallback saved
    with the model (None when none may be: see :func:`_fallback_threshold`)."""
    from intentbal.manifest import build_manifest
    from intentbal.predict import IntentClassifier

    counts = profile.counts()
    after = augmented.counts() if augmented else counts
    meta = {"train_counts": counts, "augmented_counts": after, "max_length": config.model.max_length,
            "class_weights": dict(zip(trained.intents, trained.class_weights)),
            "logit_adjustment": adjustment, "intentbal_version": intentbal.__version__, "recipe": recipe(config)}
    clf = IntentClassifier.from_trained(trained, max_length=config.model.max_length,
                                       batch_size=config.evaluate.batch_size, meta=meta)
    report, saved = None, None
    with atomic_dir(config.output_dir) as out:
        trained.model.save_pretrained(out / "model", safe_serialization=True)
        trained.tokenizer.model_max_length = config.model.max_length  # transformers then cuts where intentbal does
        trained.tokenizer.save_pretrained(out / "model")
        atomic_write_text(out / "config.yaml", config_to_yaml(config))
        atomic_write_text(out / "manifest.json", json_text(build_manifest(config)))
        atomic_write_text(out / "profile.json", json_text(profile.to_dict()))
        atomic_write_text(out / "augmentation.jsonl", _augmented_rows(augmented, jsonl=True, synthetic_only=True))
        atomic_write_text(out / "train_metrics.json", json_text(metrics))
        if split.eval is not None:
            report, fallback = _evaluate(config, clf, split.eval, (counts, after), out, warnings, split.validation)
            chosen: tuple[float, str, bool] | None = (fallback.threshold, fallback.chosen_on, fallback.deployable)
        else:
            chosen = _fallback_threshold(config, clf, split.validation)
        if chosen is not None and chosen[2]:
            saved = {"threshold": chosen[0], "chosen_on": chosen[1], "intent": config.evaluate.fallback_intent}
        meta["fallback"] = saved
        atomic_write_text(out / "model" / "intentbal.json", json_text(meta))
        atomic_write_text(out / "model" / "README.md", _card(config, meta, report, _eval_name(config)))
    return report, saved


def evaluate_model(
    config: Config, *, model_dir: Path, data: Path, output: Path, backend: Backend = "auto",
    update_card: bool = False, progress: Progress | None = None,
) -> Report:
    """Evaluate a trained model folder on ``data``; write the report files to ``output``.

    With ``update_card``, also rewrite the model card ``model_dir/README.md`` from this evaluation
    (nothing else in ``model_dir`` changes). ``progress("predict", done, total)`` follows the
    prediction of ``data``.
    """
    check_output_dir(output)
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
    with atomic_dir(output) as out:
        report = _evaluate(config, clf, eval_data, (counts, clf.meta.get("augmented_counts", counts)), out, [],
                           validation, progress=progress)[0]
        if update_card:  # inside the block: a card that cannot be written leaves no report either
            atomic_write_text(Path(model_dir) / "README.md", _card(config, clf.meta, report, str(data),
                                                                   model_dir=Path(model_dir)))
    return report


def predict_file(
    config: Config, *, model_dir: Path, input_path: Path, output: Path, backend: Backend = "auto",
    top_k: int | None = None, fallback_threshold: float | None = None, progress: Progress | None = None,
) -> int:
    """Write ``text,prediction,confidence`` (and ``intent`` when the input has it) to ``output``.

    ``prediction`` is the fallback intent under the fallback threshold: ``fallback_threshold``,
    else ``evaluate.fallback_threshold``, else the one saved with the model, if any. With
    ``top_k``, each row also ranks the ``top_k`` most likely intents (see
    :func:`intentbal.predict.prediction_rows`). ``output`` ending in ``.jsonl`` gets JSON lines,
    any other name CSV. Returns the number of rows.
    """
    from intentbal.predict import prediction_rows

    if top_k is not None and top_k < 1:
        raise IntentbalError(f"--top-k: expected a whole number of at least 1, found {top_k}")
    clf = _classifier(config, model_dir, backend)
    threshold = fallback_threshold if fallback_threshold is not None else config.evaluate.fallback_threshold
    if threshold is not None:
        if not clf.meta.get("fallback"):  # a threshold saved with the model keeps its intent's name
            clf.fallback_intent = config.evaluate.fallback_intent
        clf.fallback_threshold = threshold
    data = load_data(config, input_path, "test", require_intent=False)
    probs = clf.proba(data.texts, progress=progress)
    predicted, confidence = clf.answer(probs)
    jsonl = output.suffix.lower() == ".jsonl"
    rows = prediction_rows(data.texts, predicted, confidence, gold=data.intents if data.labelled else None,
                           rankings=clf.ranking(probs, top_k) if top_k else None, flat=not jsonl)
    atomic_write_text(output, _rows_jsonl(rows) if jsonl else _rows_csv(rows))
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


def _rows_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _rows_csv(rows: list[dict]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    return buf.getvalue()


def _classifier(config: Config, model_dir: Path, backend: Backend = "auto") -> IntentClassifier:
    from intentbal.predict import IntentClassifier

    return IntentClassifier.load(model_dir, config=config.model, batch_size=config.evaluate.batch_size,
                                 backend=backend)


def _few(names: set[str], limit: int = 4) -> str:
    shown = sorted(names)[:limit]
    return ", ".join(shown) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def load_data(config: Config, path: Path, split: str, *, require_intent: bool = True) -> IntentData:
    """``path`` loaded with the config's column names."""
    return load_intents(
        path,
        text_column=config.data.text_column,
        intent_column=config.data.intent_column,
        split=split,
        require_intent=require_intent,
    )


def _profile(config: Config, train: IntentData, eval_intents: Sequence[str]) -> Profile:
    p = config.profile
    eval_intents = [i for i in eval_intents if i != config.data.oos_label]  # out-of-scope is never trained
    return profile_intents(
        train.texts, train.intents, eval_intents=eval_intents,
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


def _augmented_rows(result: AugmentResult | None, *, jsonl: bool, synthetic_only: bool = False) -> str:
    import csv
    import io

    rows = [] if synthetic_only or result is None else [
        {"text": t, "intent": i, "source_text": "", "augmenter": ""}
        for t, i in zip(result.data.texts[: len(result.data) - len(result.synthetic)], result.data.intents)
    ]
    rows += [asdict(s) for s in (result.synthetic if result else [])]
    if jsonl:
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["text", "intent", "source_text", "augmenter"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _evaluate(
    config: Config,
    clf: IntentClassifier,
    data: IntentData,
    counts: tuple[dict[str, int], dict[str, int]],
    out: Path,
    warnings: list[str],
    validation: IntentData | None = None,
    *,
    progress: Progress | None = None,
) -> tuple[Report, FallbackAnalysis]:
    """Predict ``data``, score it, weigh the fallback threshold, and write every report file.

    The scores are those of the model's own decisions, without any fallback; the report's
    summary adds ``oos_examples``, ``fallback_threshold`` and ``oos_caught`` (None without
    out-of-scope examples).
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
    threshold, chosen_on, deployable = _fallback_threshold(config, clf, validation, data, predicted, confidence)
    fallback = analyse_fallback(data.intents, predicted, confidence, threshold=threshold, chosen_on=chosen_on,
                                oos_label=oos, deployable=deployable)
    report = Report({**report.summary, "oos_examples": len(data) - len(keep), "fallback_threshold": threshold,
                     "oos_caught": fallback.oos_recall}, report.intents)
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

    old = read_report(baseline) if baseline is not None else None
    evaluate = config.evaluate.model_copy(update={"recall_threshold": min_recall})
    config = config.model_copy(update={"evaluate": evaluate})
    if output is None:
        with tempfile.TemporaryDirectory() as tmp:
            report = evaluate_model(config, model_dir=model_dir, data=data, output=Path(tmp) / "report")
    else:
        report = evaluate_model(config, model_dir=model_dir, data=data, output=output)
    return report, audit_report(report.to_dict(), min_tail_recall=min_tail_recall, baseline=old)


def compare_files(a: Path, b: Path) -> list[Change]:
    """Per-intent recall changes from report file ``a`` to report file ``b``."""
    return compare_reports(read_report(a), read_report(b))


def read_report(path: Path) -> dict:
    """A ``report.json`` written by intentbal, checked for the fields the audit needs."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntentbalError(f"{path}: report not found; pass OUTPUT/report.json of an earlier run") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntentbalError(f"{path}: expected an intentbal report.json, found unreadable JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("intents"), list) or "summary" not in doc:
        raise IntentbalError(f"{path}: expected an intentbal report.json with 'summary' and 'intents', found other JSON")
    return doc
