"""Scoring a model on eval data: its predictions, the report, and the fallback threshold weighed on them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from intentbal.config import Config
from intentbal.data.overlap import Overlap
from intentbal.data.types import IntentData
from intentbal.errors import IntentbalError
from intentbal.evaluation.fallback import FallbackAnalysis, FallbackChoice, analyse_fallback, choose_threshold
from intentbal.evaluation.metrics import RefitNote, Report, evaluate_predictions

if TYPE_CHECKING:
    import numpy as np

    from intentbal.inference.classifier import IntentClassifier
    from intentbal.progress import Progress


@dataclass(frozen=True, kw_only=True)
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


def score(
    config: Config, clf: IntentClassifier, data: IntentData, *, train_counts: dict[str, int],
    augmented_counts: dict[str, int], pseudo_counts: dict[str, int] | None = None,
    validation: IntentData | None = None, overlap: Overlap | None = None,
    refit: RefitNote | None = None, progress: Progress | None = None,
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
                      oos_caught=fallback.oos_recall, overlap=overlap,
                      refit=refit)
    report = replace(report, summary=summary)
    return Scores(data=data, predicted=predicted, confidence=confidence, probabilities=probs, intents=clf.intents,
                  report=report, fallback=fallback, warnings=warnings)


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
        return FallbackChoice(threshold=e.fallback_threshold, chosen_on="given", deployable=True)
    if validation is not None and (has_oos(validation) or not has_oos(data)):
        v_pred, v_conf = clf.decide(clf.proba(validation.texts))
        threshold = choose_threshold(validation.intents, v_pred, v_conf, oos_label=oos,
                                     target_precision=e.fallback_precision)
        return FallbackChoice(threshold=threshold, chosen_on="validation", deployable=has_oos(validation))
    if clf.fallback_threshold is not None:
        return FallbackChoice(threshold=clf.fallback_threshold, chosen_on="model", deployable=True)
    if data is None or predicted is None or confidence is None:
        return None
    threshold = choose_threshold(data.intents, predicted, confidence, oos_label=oos,
                                 target_precision=e.fallback_precision)
    return FallbackChoice(threshold=threshold, chosen_on="eval", deployable=has_oos(data))
