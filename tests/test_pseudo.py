"""Which pool rows a teacher's labels are kept for: confident, new, and rebalanced towards rare intents."""

from __future__ import annotations

import numpy as np
import pytest

from intentbal.pseudo import keep_rates, select_pseudo_labels

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


def test_probabilities_must_match_the_texts_and_intents():
    with pytest.raises(ValueError, match="must be 2 x 3"):
        select_pseudo_labels(["a", "b"], np.zeros((3, 3)), INTENTS, COUNTS, threshold=0.5, alpha=1)


def test_reports_show_what_each_intent_borrowed_only_when_anything_was():
    from intentbal.evaluate import evaluate_predictions
    from intentbal.report import report_table
    from intentbal.webreport import render_html

    gold = ["refund", "lost_card", "card_arrival"]
    plain = evaluate_predictions(gold, gold, train_counts=COUNTS)
    borrowed = evaluate_predictions(gold, gold, train_counts=COUNTS, pseudo_counts={"lost_card": 7})
    assert [m.pseudo_count for m in borrowed.intents] == [7, 0, 0]  # rarest first
    assert borrowed.to_dict()["intents"][0]["pseudo_count"] == 7
    assert "pseudo" not in report_table(plain) and "pseudo" not in render_html(plain, figures={})
    table = report_table(borrowed).splitlines()
    assert table[0].split()[4] == "pseudo" and table[2].split()[:5] == ["lost_card", "rare", "4", "4", "7"]
    assert "<th data-sort='4'>pseudo</th>" in render_html(borrowed, figures={})
