"""Which pool rows a teacher's labels are kept for: confident, new, and rebalanced towards rare intents."""

from __future__ import annotations

import numpy as np
import pytest

from intentbal.rebalance.pseudo import keep_rates, select_pseudo_labels

INTENTS = ["card_arrival", "refund", "lost_card"]
COUNTS = {"card_arrival": 100, "refund": 25, "lost_card": 4}


def probs_for(best: list[int], confidence: list[float]) -> np.ndarray:
    """One row per pool text: ``confidence`` on intent ``best``, the rest spread evenly."""
    out = np.zeros((len(best), len(INTENTS)))
    for row, (b, c) in enumerate(zip(best, confidence)):
        out[row] = (1 - c) / (len(INTENTS) - 1)
        out[row, b] = c
    return out


def test_the_rarest_intent_keeps_every_label_and_the_most_frequent_the_fewest():
    rates = keep_rates(COUNTS, alpha=0.5)
    assert rates["lost_card"] == 1.0
    assert rates["card_arrival"] == pytest.approx((4 / 100) ** 0.5)
    assert rates["refund"] == pytest.approx((25 / 100) ** 0.5)  # ranked 2nd of 3: n_(3+1-2) = n_2 = 25
    assert keep_rates(COUNTS, alpha=0) == dict.fromkeys(COUNTS, 1.0)


def test_rates_do_not_depend_on_the_order_of_the_counts():
    assert keep_rates(dict(reversed(list(COUNTS.items()))), alpha=1) == keep_rates(COUNTS, alpha=1)


def test_only_confident_new_texts_are_kept_most_confident_first():
    texts = [f"arrival {k}" for k in range(10)] + ["lost it", "lost it", "card gone", "unsure", "known text"]
    best = [0] * 10 + [2, 2, 2, 1, 2]
    confidence = [0.9 + k / 100 for k in range(10)] + [0.95, 0.97, 0.99, 0.5, 0.99]
    kept = select_pseudo_labels(texts, probs_for(best, confidence), INTENTS, COUNTS, threshold=0.8, alpha=1,
                                exclude={"known text"})
    by_intent = {i: [p.text for p in kept if p.intent == i] for i in INTENTS}
    assert by_intent["lost_card"] == ["card gone", "lost it"]  # a repeat and a labelled text are not kept twice
    assert by_intent["refund"] == []  # "unsure" is under the threshold
    # 10 confident card_arrival rows, rate 4/100: ceil(0.4) = 1 row, the most confident
    assert by_intent["card_arrival"] == ["arrival 9"]
    assert all(p.confidence >= 0.8 for p in kept)


def test_without_rebalancing_every_confident_row_is_kept():
    texts = [f"t{k}" for k in range(6)]
    kept = select_pseudo_labels(texts, probs_for([0, 0, 1, 1, 2, 2], [0.9] * 6), INTENTS, COUNTS,
                                threshold=0.5, alpha=0)
    assert sorted(p.text for p in kept) == texts


def test_an_intent_borrows_at_most_the_cap_most_confident_first():
    texts = [f"lost {k}" for k in range(8)] + [f"arrival {k}" for k in range(3)]
    confidence = [0.90 + k / 100 for k in range(8)] + [0.99] * 3
    probs = probs_for([2] * 8 + [0] * 3, confidence)
    kept = select_pseudo_labels(texts, probs, INTENTS, COUNTS, threshold=0.5, alpha=0, max_per_intent=3)
    assert [p.text for p in kept if p.intent == "lost_card"] == ["lost 7", "lost 6", "lost 5"]
    assert len([p for p in kept if p.intent == "card_arrival"]) == 3
    uncapped = select_pseudo_labels(texts, probs, INTENTS, COUNTS, threshold=0.5, alpha=0)
    assert len(uncapped) == len(texts)
    with pytest.raises(ValueError, match="at least 1"):
        select_pseudo_labels(texts, probs, INTENTS, COUNTS, threshold=0.5, alpha=0, max_per_intent=0)


def test_the_student_takes_the_steps_of_the_fit_without_the_pool():
    from intentbal.config import load_config
    from intentbal.data.types import IntentData
    from intentbal.rebalance.pseudo import PseudoLabel, PseudoRows
    from intentbal.training.recipe import train_section

    labelled = IntentData(["a", "b", "c", "d"], ["x", "x", "y", "y"], None)
    borrowed = [PseudoLabel(text=f"p{k}", intent="y", confidence=0.9) for k in range(12)]
    student = PseudoRows(labels=borrowed, weight=1.0).resample(labelled)
    config = load_config(overrides=["train.epochs=8"])
    assert train_section(config, student).epochs == pytest.approx(8 * 4 / 16)  # 4 labelled rows of 16
    assert train_section(config, labelled) is config.train  # the teacher: as configured
    every_row = load_config(overrides=["train.epochs=8", "self_training.steps=all"])
    assert train_section(every_row, student).epochs == 8


def test_probabilities_must_match_the_texts_and_intents():
    with pytest.raises(ValueError, match="must be 2 x 3"):
        select_pseudo_labels(["a", "b"], np.zeros((3, 3)), INTENTS, COUNTS, threshold=0.5, alpha=1)


def test_reports_show_what_each_intent_borrowed_only_when_anything_was():
    from intentbal.evaluation.metrics import evaluate_predictions
    from intentbal.reports.html import render_html
    from intentbal.reports.text import report_table

    gold = ["refund", "lost_card", "card_arrival"]
    plain = evaluate_predictions(gold, gold, train_counts=COUNTS)
    borrowed = evaluate_predictions(gold, gold, train_counts=COUNTS, pseudo_counts={"lost_card": 7})
    assert [m.pseudo_count for m in borrowed.intents] == [7, 0, 0]  # rarest first
    assert borrowed.to_dict()["intents"][0]["pseudo_count"] == 7
    assert "pseudo" not in report_table(plain) and "pseudo" not in render_html(plain, figures={})
    table = report_table(borrowed).splitlines()
    assert table[0].split()[4] == "pseudo" and table[2].split()[:5] == ["lost_card", "rare", "4", "4", "7"]
    assert "<th class='' data-sort='4'>pseudo</th>" in render_html(borrowed, figures={})


def test_row_weights_scale_each_rows_share_of_the_loss():
    import torch

    from intentbal.training.losses import weighted_cross_entropy

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 0.0, 3.0]])
    targets = torch.tensor([0, 0, 2])
    weights = torch.tensor([1.0, 2.0, 0.5])
    per_row = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    rows = torch.tensor([1.0, 0.25, 1.0])
    expected = (rows * weights[targets] * per_row).sum() / (rows * weights[targets]).sum()
    assert weighted_cross_entropy(logits, targets, weights, None, rows) == pytest.approx(expected.item())
    assert weighted_cross_entropy(logits, targets, weights, None, torch.ones(3)) == pytest.approx(
        weighted_cross_entropy(logits, targets, weights).item())
    ignored = weighted_cross_entropy(logits, targets, None, None, torch.tensor([1.0, 0.0, 1.0]))
    assert ignored == pytest.approx(weighted_cross_entropy(logits[[0, 2]], targets[[0, 2]], None).item())


def test_extended_rows_carry_their_weights_through_a_subset():
    from intentbal.data.types import IntentData

    data = IntentData(["a", "b"], ["x", "y"], "toy").extended(["c"], ["x"], weight=0.5)
    assert data.weights == [1.0, 1.0, 0.5] and data.texts == ["a", "b", "c"]
    assert data.subset([2, 0]).weights == [0.5, 1.0]


@pytest.mark.slow  # trains a teacher and a student through the CLI
def test_self_training_trains_on_the_pool_and_reports_what_each_intent_borrowed(tmp_path, fast_overrides, capsys):
    import json

    from conftest import TOY_EVAL, read_jsonl, run_cli, set_args, toy_rows, write_csv

    train = write_csv(tmp_path / "train.csv", toy_rows())
    held = write_csv(tmp_path / "eval.csv", TOY_EVAL)
    pool_texts = ["where did my parcel go", "give my money back", "i lost my password again", "card stolen today",
                  "track it please", TOY_EVAL[0][0], "refund this purchase"]  # an eval text and a training text
    pool = write_csv(tmp_path / "pool.csv", [(t,) for t in pool_texts], header=("text",))
    out = tmp_path / "run"
    overrides = [*fast_overrides, "train.epochs=2", "self_training.threshold=0", "self_training.alpha=0",
                 "evaluate.plots=false"]
    assert run_cli("train", "--train", train, "--eval", held, "--unlabeled", pool, "--output", out,
                   *set_args(overrides)) == 0
    printed = capsys.readouterr().out
    borrowed = read_jsonl(out / "pseudo_labels.jsonl")
    texts = {r["text"] for r in borrowed}
    assert texts == set(pool_texts) - {TOY_EVAL[0][0], "refund this purchase"}, "never an eval or a training text"
    report = json.loads((out / "report.json").read_text())
    by_intent = {r["intent"]: r["pseudo_count"] for r in report["intents"]}
    assert sum(by_intent.values()) == len(borrowed)
    assert all(by_intent[r["intent"]] >= 1 for r in borrowed)
    meta = json.loads((out / "model" / "intentbal.json").read_text())
    assert meta["pseudo_counts"] == {i: n for i, n in by_intent.items() if n}
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["pseudo_rows"] == len(borrowed)
    assert metrics["train_rows"] == len(toy_rows()) + len(read_jsonl(out / "augmentation.jsonl"))
    assert f"self-training: {len(borrowed)} unlabeled utterances" in printed
    assert "pseudo" in (out / "report.md").read_text()
    card = (out / "model" / "README.md").read_text()
    assert f"| self-training | {len(borrowed)} unlabeled utterances borrowed (teacher confidence at least 0);" in card
    assert "the student took as many steps as its teacher" in card


def test_bf16_probabilities_stay_near_fp32s(trained_run):
    from intentbal.inference.classifier import IntentClassifier

    clf = IntentClassifier.load(trained_run / "model", backend="torch")
    texts = ["where is my card", "i want my money back", "my card was stolen", "reset my password please"]
    exact, fast = clf.proba(texts), clf.proba(texts, bf16=True)
    assert not np.array_equal(exact, fast), "bf16 autocast ran"
    np.testing.assert_allclose(fast, exact, atol=0.05)
    np.testing.assert_allclose(fast.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize(("precision", "native", "expected"),
                         [("auto", True, True), ("auto", False, False), ("fp32", True, False), ("bf16", False, True)])
def test_the_teacher_labels_the_pool_in_the_arithmetic_it_trained_in(monkeypatch, caplog, precision, native,
                                                                     expected):
    import logging
    from types import SimpleNamespace

    import torch

    from intentbal.config import load_config
    from intentbal.data.types import IntentData
    from intentbal.training import plan
    from intentbal.training.recipe import label_pool

    asked: list[bool] = []

    def proba(texts, *, bf16=False):
        asked.append(bf16)
        return probs_for([2] * len(texts), [0.95] * len(texts))

    monkeypatch.setattr(plan, "native_bf16", lambda device: native and device == "cpu")
    classifier = SimpleNamespace(model=torch.nn.Linear(2, 3), intents=INTENTS, proba=proba)
    teacher = SimpleNamespace(classifier=classifier, data=IntentData(list("abcdef"), INTENTS * 2, None))
    config = load_config(overrides=[f"train.precision={precision}", "self_training.threshold=0.5"])
    with caplog.at_level(logging.INFO, logger="intentbal"):
        kept = label_pool(config, teacher, ["lost it", "card gone"])
    assert asked == [expected]
    assert f"the teacher labels 2 unlabeled utterances in {'bf16' if expected else 'fp32'}" in caplog.text
    assert [p.intent for p in kept] == ["lost_card", "lost_card"]
