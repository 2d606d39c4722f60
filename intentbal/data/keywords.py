"""Each intent's discriminative words: the terms that set its examples apart from the rest.

A word is a run of at least two word characters, lowercased (scikit-learn's default
``CountVectorizer`` tokens), so ``"Card's"`` holds the word ``card``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

WORD_PATTERN = r"(?u)\b\w\w+\b"


def words_in(text: str) -> list[str]:
    """The words of ``text``, lowercased, in order, as the ranking counts them."""
    return re.findall(WORD_PATTERN, text.lower())


def discriminative_words(texts: Sequence[str], intents: Sequence[str], *, top_k: int) -> dict[str, list[str]]:
    """Each intent's ``top_k`` words by one-vs-rest chi², best first.

    A word counts once per example (document frequency); only words more frequent among the
    intent's examples than among all examples are candidates, since chi² also rewards words an
    intent avoids. Ties are broken by the word, so the result depends only on the rows. Every
    intent is a key; its list is shorter than ``top_k`` when it has fewer candidates, and empty
    when there is no other intent to tell it from.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    names = sorted(set(intents))
    if top_k < 1 or len(names) < 2:
        return {intent: [] for intent in names}
    vectorizer = CountVectorizer(token_pattern=WORD_PATTERN, lowercase=True, binary=True)
    try:
        counts = vectorizer.fit_transform(texts).tocsc()
    except ValueError:  # no text holds a word
        return {intent: [] for intent in names}
    vocabulary = vectorizer.get_feature_names_out()
    share = np.asarray(counts.sum(axis=0)).ravel() / len(texts)
    labels = np.asarray(intents)
    return {
        intent: _top(counts, labels == intent, share=share, vocabulary=vocabulary, top_k=top_k)
        for intent in names
    }


def _top(counts: Any, member: np.ndarray, *, share: np.ndarray, vocabulary: np.ndarray, top_k: int) -> list[str]:
    from sklearn.feature_selection import chi2

    scores, _ = chi2(counts, member)
    inside = np.asarray(counts[member].sum(axis=0)).ravel() / member.sum()
    candidates = np.flatnonzero(inside > share)
    best = sorted(candidates, key=lambda i: (-scores[i], vocabulary[i]))
    return [str(vocabulary[i]) for i in best[:top_k]]
