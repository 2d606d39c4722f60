"""Self-training on unlabeled utterances: which rows of a pool a teacher's labels are kept for.

A chatbot's logs are full of unlabeled utterances, many of them of its rare intents. A model
trained on the labelled rows (the teacher) labels the pool; its confident labels become extra
training rows for the next model (the student). On a long tail the teacher's confident labels
are mostly frequent intents, so, as in CReST (Wei et al., 2021, "CReST: A Class-Rebalancing
Self-Training Framework for Imbalanced Semi-Supervised Learning"), fewer of them are kept the
more frequent the predicted intent is: of the confident labels of the intent ranked ``r``-th by
training count (``r = 1`` the most frequent, of ``L``), the share kept is
``(n_(L+1-r) / n_1) ** alpha`` -- 1 for the rarest intent, ``(n_min / n_max) ** alpha`` for the
most frequent -- the most confident first, and at most a cap per intent, so that a pool of a
year's logs adds rows in proportion to the labelled data rather than to its own size.

Pure functions of arrays and lists: the teacher's probabilities come in, the rows to keep go out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from intentbal.data.types import IntentData, Provenance


@dataclass(frozen=True, kw_only=True)
class PseudoLabel:
    """A pool utterance labelled by the teacher."""

    text: str
    intent: str
    confidence: float


def keep_rates(counts: Mapping[str, int], *, alpha: float) -> dict[str, float]:
    """The share of each intent's confident pseudo-labels kept (CReST); intents ranked by count,
    ties by name, so the rates do not depend on the order of ``counts``."""
    ranked = sorted(counts, key=lambda i: (-counts[i], i))
    sizes = [counts[i] for i in ranked]
    if not sizes or min(sizes) <= 0:
        raise ValueError(f"counts must be positive, got {dict(counts)}")
    return {intent: (sizes[len(sizes) - 1 - r] / sizes[0]) ** alpha for r, intent in enumerate(ranked)}


def select_pseudo_labels(
    texts: Sequence[str],
    probabilities: np.ndarray,
    intents: Sequence[str],
    counts: Mapping[str, int],
    *,
    threshold: float,
    alpha: float,
    exclude: set[str] | frozenset[str] = frozenset(),
    max_per_intent: int | None = None,
) -> list[PseudoLabel]:
    """The pool rows to train on, with the teacher's intent, most confident first within each intent.

    ``probabilities`` holds one row per text and one column per intent (``intents``); a row is a
    candidate when its best probability is at least ``threshold``, its text is not in ``exclude``
    (the labelled texts) and not a repeat of an earlier pool text. Of each intent's candidates the
    :func:`keep_rates` share is kept, rounded up (an intent with a candidate keeps at least one),
    and at most ``max_per_intent`` (no cap when None). ``counts`` are the labelled training counts.
    """
    if max_per_intent is not None and max_per_intent < 1:
        raise ValueError(f"max_per_intent must be at least 1, got {max_per_intent}")
    if probabilities.shape != (len(texts), len(intents)):
        raise ValueError(f"probabilities must be {len(texts)} x {len(intents)}, got {probabilities.shape}")
    rates = keep_rates({i: counts[i] for i in intents}, alpha=alpha)
    best = probabilities.argmax(axis=1) if len(texts) else np.zeros(0, dtype=int)
    seen = set(exclude)
    candidates: dict[str, list[PseudoLabel]] = {i: [] for i in intents}
    for row, text in enumerate(texts):
        confidence = float(probabilities[row, best[row]])
        if confidence < threshold or text in seen:
            continue
        seen.add(text)
        intent = intents[best[row]]
        candidates[intent].append(PseudoLabel(text=text, intent=intent, confidence=confidence))
    kept: list[PseudoLabel] = []
    for intent in intents:
        ranked = sorted(candidates[intent], key=lambda p: -p.confidence)  # stable: pool order breaks ties
        share = math.ceil(rates[intent] * len(ranked))
        kept += ranked[: share if max_per_intent is None else min(share, max_per_intent)]
    return kept


@dataclass(frozen=True, kw_only=True)
class PseudoRows:
    """The row transform of self-training: the ``labels`` a teacher chose join the rows, each
    weighing ``weight`` of a labelled row in the loss, its confidence in its provenance."""

    labels: Sequence[PseudoLabel]
    weight: float
    name: str = "pseudo-labels"

    def resample(self, rows: IntentData) -> IntentData:
        made = [Provenance(made_by="pseudo", confidence=p.confidence) for p in self.labels]
        return rows.extended([p.text for p in self.labels], [p.intent for p in self.labels], weight=self.weight,
                             provenance=made)


def pseudo_labels(rows: IntentData) -> list[PseudoLabel]:
    """The pseudo-labelled rows among ``rows``, as the teacher chose them."""
    labels = []
    for i in rows.made_by("pseudo"):
        made = (rows.provenance or [])[i]
        assert made is not None and made.confidence is not None  # made_by lists rows with a provenance
        labels.append(PseudoLabel(text=rows.texts[i], intent=rows.intents[i], confidence=made.confidence))
    return labels
