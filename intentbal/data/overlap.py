"""Eval rows that are also training rows: pure functions of lists of texts.

An eval example whose text was trained on measures memorisation, not generalisation.
Texts are compared exactly and after normalising (casefold, punctuation removed,
whitespace collapsed). A model folder keeps only short SHA-1 prefixes of its training
texts (:func:`text_hashes`), enough to find the overlap later without keeping the texts.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HASH_CHARS = 16  # 64 bits of SHA-1: a chance collision among a million texts is about 1 in 30 million


def normalise(text: str) -> str:
    """``text`` casefolded, without punctuation, with runs of whitespace made one space."""
    kept = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text.casefold())
    return " ".join(kept.split())


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def text_hashes(texts: Sequence[str]) -> dict[str, list[str]]:
    """Sorted distinct hash prefixes of ``texts`` as given (``exact``) and normalised (``normalised``)."""
    return {
        "exact": sorted({_hash(t) for t in texts}),
        "normalised": sorted({_hash(normalise(t)) for t in texts}),
    }


def seen_texts(train_hashes: dict[str, list[str]], texts: Sequence[str]) -> list[bool]:
    """Whether each of ``texts``, once normalised, is one the :func:`text_hashes` ``train_hashes`` were made of."""
    known = set(train_hashes.get("normalised", ()))
    return [_hash(normalise(text)) in known for text in texts]


@dataclass(frozen=True, kw_only=True)
class Overlap:
    """How many eval rows repeat a training text, overall and per eval intent (intents without
    overlap are left out of ``per_intent``)."""

    exact: int
    normalised: int  # includes the exact ones
    eval_rows: int
    per_intent: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"exact": self.exact, "normalised": self.normalised, "eval_rows": self.eval_rows,
                "per_intent": self.per_intent}


def train_eval_overlap(
    train_texts: Sequence[str], eval_texts: Sequence[str], eval_intents: Sequence[str]
) -> Overlap:
    """Eval rows whose text occurs in ``train_texts``, exactly or once normalised."""
    return overlap_with_hashes(text_hashes(train_texts), eval_texts, eval_intents)


def overlap_with_hashes(
    train_hashes: dict[str, list[str]], eval_texts: Sequence[str], eval_intents: Sequence[str]
) -> Overlap:
    """:func:`train_eval_overlap` against the training texts' :func:`text_hashes`."""
    exact_set, norm_set = set(train_hashes.get("exact", ())), set(train_hashes.get("normalised", ()))
    exact: Counter[str] = Counter()
    norm: Counter[str] = Counter()
    for text, intent in zip(eval_texts, eval_intents):
        if _hash(text) in exact_set:
            exact[intent] += 1
        if _hash(normalise(text)) in norm_set:
            norm[intent] += 1
    per_intent = {i: {"exact": exact[i], "normalised": norm[i]}
                  for i in sorted(norm, key=lambda i: (-norm[i], i))}
    return Overlap(exact=sum(exact.values()), normalised=sum(norm.values()), eval_rows=len(eval_texts),
                   per_intent=per_intent)


def overlap_warning(overlap: Overlap, *, see: str) -> str | None:
    """One terminal line about ``overlap``, the most affected intents first; None without any."""
    from intentbal.listing import listing

    if not overlap.normalised:
        return None
    worst = [f"{i} {c['normalised']}" for i, c in overlap.per_intent.items()]
    return (f"{overlap.normalised} of {overlap.eval_rows} eval row(s) are also training rows "
            f"({overlap.exact} exact, {overlap.normalised} after normalising case, spaces and punctuation): "
            f"{listing(worst, see=see)}; their scores measure memorisation: remove them from the eval data")
