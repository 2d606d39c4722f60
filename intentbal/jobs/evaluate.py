"""``intentbal evaluate``, and the scoring every report comes from (``train`` writes its report
with the same two phases: :func:`score`, then :func:`write_scores`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intentbal.card import card_text
from intentbal.config import Config
from intentbal.data import IntentData
from intentbal.errors import IntentbalError
from intentbal.evaluate import Report, evaluate_predictions
from intentbal.fallback import FallbackAnalysis, FallbackChoice, analyse_fallback, choose_threshold
from intentbal.jobs.inputs import few, load_data
from intentbal.outputs import atomic_dir, atomic_write_bytes, atomic_write_text, json_text, output_folder
from intentbal.overlap import Overlap, overlap_with_hashes
from intentbal.report import predictions_csv, write_report
from intentbal.webreport import render_html

if TYPE_CHECKING:
    import numpy as np

    from intentbal.predict import IntentClassifier
    from intentbal.progress import Progress
    from intentbal.runtime import Backend


@dataclass(frozen=True)
class Scores:
    """A model's predictions on eval data, scored: the report, the fallback weighed on them, and
    what the caller should be warned of."""

    data: IntentData
    predicted: list[str]
    confidence: list[float]
    probabilities: np.ndarray
    intents: list[str]  # the probabilities' columns
    report: Report
    fallback: FallbackAnalysis
    warnings: list[str]


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
    with output_folder(output, kind="evaluate", inputs=[model_dir, data, config.data.validation, config.source]) \
            as output:
        return _evaluate(config, model_dir=model_dir, data=data, output=output, backend=backend,
                         update_card=update_card, progress=progress)


def _evaluate(
    config: Config, *, model_dir: Path, data: Path, output: Path, backend: Backend, update_card: bool,
    progress: Progress | None,
) -> Report:
    clf = load_classifier(config, model_dir, backend)
    if update_card and not clf.meta:
        raise IntentbalError(f"model {model_dir}: expected an intentbal model folder (with intentbal.json) for "
                             "--update-card, found none; evaluate it without --update-card")
    eval_data = load_data(config, data, "eval")
    known = set(clf.intents)
    if not known & set(eval_data.intents):
        raise IntentbalError(
            f"model {model_dir}: its intents ({few(known)}) share none with {data} ({few(set(eval_data.intents))}); "
            "pass the model trained for this data, or the right --set data.intent_column"
        )
    counts = clf.meta.get("train_counts", {})
    validation = load_data(config, config.data.validation, "validation") if config.data.validation else None
    hashes = clf.meta.get("train_text_sha1")  # absent in folders saved before intentbal kept them
    overlap = overlap_with_hashes(hashes, eval_data.texts, eval_data.intents) if isinstance(hashes, dict) else None
    m = clf.meta
    scores = score(config, clf, eval_data, train_counts=counts, augmented_counts=m.get("augmented_counts", counts),
                   pseudo_counts=m.get("pseudo_counts"), validation=validation, overlap=overlap, progress=progress)
    with atomic_dir(output, kind="evaluate") as out:
        write_scores(config, out, scores)
        if update_card:  # inside the block: a card that cannot be written leaves no report either
            atomic_write_text(Path(model_dir) / "README.md",
                              card_text(config, clf.meta, scores.report, str(data), model_dir=Path(model_dir)))
    return scores.report


def load_classifier(config: Config, model_dir: Path, backend: Backend = "auto") -> IntentClassifier:
    """A saved model folder, with the config's model settings and prediction batch size."""
    from intentbal.predict import IntentClassifier

    return IntentClassifier.load(model_dir, config=config.model, batch_size=config.evaluate.batch_size,
                                 backend=backend)


def score(
    config: Config, clf: IntentClassifier, data: IntentData, *, train_counts: dict[str, int],
    augmented_counts: dict[str, int], pseudo_counts: dict[str, int] | None = None,
    validation: IntentData | None = None, overlap: Overlap | None = None,
    refit: dict[str, object] | None = None, progress: Progress | None = None,
) -> Scores:
    """Predict ``data``, score the model's own decisions (out-of-scope rows aside, no fallback), and
    weigh the fallback threshold (see :func:`choose_fallback`).

    The report's summary adds ``oos_examples``, ``fallback_threshold`` and ``oos_caught`` (None
    without out-of-scope examples), ``overlap`` (eval rows that are training rows; null when the
    training texts are unknown) and, with ``refit``, a note that the model measured is not the
    one shipped.
    """
    probs = clf.proba(data.texts, progress=progress)
    predicted, confidence = clf.decide(probs)
    warnings = [f"{clf.truncated} eval text(s) longer than {clf.max_length} tokens were truncated"] \
        if clf.truncated else []
    oos = config.data.oos_label
    keep = [i for i, g in enumerate(data.intents) if g != oos]
    if not keep:
        raise IntentbalError(f"{data.source}: expected in-scope examples, found only {oos!r} rows")
    e = config.evaluate
    report = evaluate_predictions(
        [data.intents[i] for i in keep], [predicted[i] for i in keep], train_counts=train_counts,
        augmented_counts=augmented_counts, pseudo_counts=pseudo_counts, probabilities=probs[keep],
        prob_intents=clf.intents,
        rare_max=config.profile.rare_max, frequent_min=config.profile.frequent_min,
        recall_threshold=e.recall_threshold, min_support=e.min_support,
    )
    chosen = choose_fallback(config, clf, validation, data=data, predicted=predicted, confidence=confidence)
    assert chosen is not None  # with eval data there is always a threshold to choose on it
    fallback = analyse_fallback(data.intents, predicted, confidence, threshold=chosen.threshold,
                                chosen_on=chosen.chosen_on, oos_label=oos, deployable=chosen.deployable)
    summary = replace(report.summary, oos_examples=len(data) - len(keep), fallback_threshold=chosen.threshold,
                      oos_caught=fallback.oos_recall, overlap=overlap.to_dict() if overlap is not None else None,
                      refit=refit)
    report = replace(report, summary=summary)
    return Scores(data, predicted, confidence, probs, clf.intents, report, fallback, warnings)


def write_scores(config: Config, out: Path, scores: Scores, *, extra_figures: dict[str, bytes] | None = None) -> None:
    """Every report file of ``scores`` into the folder ``out``: ``report.json``, ``report.md``,
    ``per_intent.csv``, ``predictions.csv``, ``fallback_curve.json`` and, with
    ``evaluate.plots``, ``report.html`` and ``plots/`` (with ``extra_figures`` among them)."""
    data, report, fallback = scores.data, scores.report, scores.fallback
    figures: dict[str, bytes] = {}
    if config.evaluate.plots:
        figures = {**_figures(config, scores), **(extra_figures or {})}
        for name, png in figures.items():
            atomic_write_bytes(out / "plots" / f"{name}.png", png)
        atomic_write_text(out / "report.html", render_html(report, figures=figures, fallback=fallback.summary()))
    write_report(out, report, extra={"fallback": fallback.summary()}, figures=list(figures))
    atomic_write_text(out / "fallback_curve.json", json_text(fallback.curve))
    atomic_write_text(out / "predictions.csv",
                      predictions_csv(data.texts, scores.predicted, scores.confidence, data.intents))


def choose_fallback(
    config: Config,
    clf: IntentClassifier,
    validation: IntentData | None,
    *,
    data: IntentData | None = None,
    predicted: list[str] | None = None,
    confidence: list[float] | None = None,
) -> FallbackChoice | None:
    """The fallback threshold; None when there is nothing to choose it on.

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
        return FallbackChoice(e.fallback_threshold, "given", True)
    if validation is not None and (has_oos(validation) or not has_oos(data)):
        v_pred, v_conf = clf.decide(clf.proba(validation.texts))
        threshold = choose_threshold(validation.intents, v_pred, v_conf, oos_label=oos,
                                     target_precision=e.fallback_precision)
        return FallbackChoice(threshold, "validation", has_oos(validation))
    if clf.fallback_threshold is not None:
        return FallbackChoice(clf.fallback_threshold, "model", True)
    if data is None or predicted is None or confidence is None:
        return None
    threshold = choose_threshold(data.intents, predicted, confidence, oos_label=oos,
                                 target_precision=e.fallback_precision)
    return FallbackChoice(threshold, "eval", has_oos(data))


def _figures(config: Config, scores: Scores) -> dict[str, bytes]:
    from intentbal import plots

    oos = config.data.oos_label
    keep = [i for i, g in enumerate(scores.data.intents) if g != oos]
    gold = [scores.data.intents[i] for i in keep]
    predicted = [scores.predicted[i] for i in keep]
    rare = scores.report.summary.tail_intents[:8]
    probs: Any = scores.probabilities[keep]
    return {
        "recall_vs_count": plots.recall_vs_count(scores.report),
        "confusions": plots.confusion_matrix(gold, predicted),
        "pr_rare": plots.pr_curves(gold, probs, scores.intents, rare),
        "fallback": plots.fallback_curves(scores.fallback.curve, rare, scores.fallback.threshold),
    }
