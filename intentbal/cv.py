"""Cross-validation that keeps rare intents: repeated stratified K-fold, recall pooled over folds."""

from __future__ import annotations

import random
from collections.abc import Sequence

from intentbal.config import Config
from intentbal.errors import IntentbalError
from intentbal.evaluate import Report, evaluate_predictions
from intentbal.outputs import atomic_dir, atomic_write_text, check_output_dir
from intentbal.pipeline import Progress, augment_training, load_data, run_inputs
from intentbal.profile import profile_intents
from intentbal.report import predictions_csv, write_report


def cross_validate(
    config: Config, *, folds: int, repeats: int = 1, progress: Progress | None = None
) -> tuple[Report, int]:
    """Repeated stratified K-fold over ``data.train``; recall pooled over every held-out fold.

    Each intent's examples are spread over the folds from a random offset, so an intent with
    fewer examples than folds still has each example held out once, and is evaluated. Returns
    the pooled report (written to ``config.output_dir``) and the number of models trained.
    """
    from intentbal.predict import IntentClassifier
    from intentbal.train import fine_tune

    if folds < 2:
        raise IntentbalError(f"--folds {folds}: expected at least 2 folds")
    check_output_dir(config.output_dir, kind="cv", inputs=run_inputs(config))
    if config.data.train is None:
        raise IntentbalError("no data to cross-validate: expected --train PATH or data.train in the config")
    data = load_data(config, config.data.train, "train")
    gold: list[str] = []
    predicted: list[str] = []
    texts: list[str] = []
    confidence: list[float] = []
    runs = 0
    for repeat in range(repeats):
        assignment = fold_assignment(data.intents, folds=folds, seed=config.seed + repeat)
        for fold in range(folds):
            held = [i for i, f in enumerate(assignment) if f == fold]
            if not held:
                continue
            train = data.subset(i for i, f in enumerate(assignment) if f != fold)
            augmented = augment_training(config, train, None, force=False)
            trained = fine_tune(augmented.data if augmented else train, model_config=config.model,
                                train_config=config.train.model_copy(update={"save_steps": 0}),
                                seed=config.seed + repeat)
            clf = IntentClassifier.from_trained(trained, max_length=config.model.max_length,
                                               batch_size=config.evaluate.batch_size)
            pred, conf = clf.predict([data.texts[i] for i in held])
            texts += [data.texts[i] for i in held]
            gold += [data.intents[i] for i in held]
            predicted += pred
            confidence += conf
            runs += 1
            if progress:
                progress("cv", runs, repeats * folds)
    counts = profile_intents(data.texts, data.intents).counts()
    e = config.evaluate
    report = evaluate_predictions(gold, predicted, train_counts=counts, rare_max=config.profile.rare_max,
                                  frequent_min=config.profile.frequent_min, recall_threshold=e.recall_threshold,
                                  min_support=e.min_support)
    with atomic_dir(config.output_dir, kind="cv") as out:
        write_report(out, report, title=f"intentbal {folds}-fold cross-validation, {repeats} repeat(s)",
                     extra={"cv": {"folds": folds, "repeats": repeats, "models": runs}})
        atomic_write_text(out / "predictions.csv", predictions_csv(texts, predicted, confidence, gold))
    return report, runs


def fold_assignment(intents: Sequence[str], *, folds: int, seed: int) -> list[int]:
    """A fold for every example: each intent's examples in a shuffled round-robin from a random fold."""
    rng = random.Random(f"folds:{seed}")
    by_intent: dict[str, list[int]] = {}
    for i, intent in enumerate(intents):
        by_intent.setdefault(intent, []).append(i)
    out = [0] * len(intents)
    for intent in sorted(by_intent):
        idx = by_intent[intent][:]
        rng.shuffle(idx)
        offset = rng.randrange(folds)
        for pos, i in enumerate(idx):
            out[i] = (pos + offset) % folds
    return out
