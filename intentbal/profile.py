"""Per-intent frequency profile and data warnings: pure functions of lists."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Any, Sequence


@dataclass(frozen=True)
class IntentProfile:
    intent: str
    count: int
    share: float
    tier: str  # "rare", "medium" or "frequent"


@dataclass(frozen=True)
class Profile:
    """What the training data looks like, intent by intent, with warnings."""

    n_examples: int
    n_intents: int
    imbalance_ratio: float
    median_count: float
    intents: list[IntentProfile]
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {p.intent: p.count for p in self.intents}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tier_of(count: int, *, rare_max: int, frequent_min: int) -> str:
    """``rare`` up to ``rare_max`` examples, ``frequent`` from ``frequent_min``, else ``medium``."""
    if count <= rare_max:
        return "rare"
    return "frequent" if count >= frequent_min else "medium"


def profile_intents(
    texts: Sequence[str],
    intents: Sequence[str],
    *,
    eval_intents: Sequence[str] = (),
    rare_max: int = 10,
    frequent_min: int = 50,
    min_count: int = 5,
) -> Profile:
    """Count each intent, assign tiers and collect warnings.

    Warnings cover intents under ``min_count``, exact duplicate examples, texts labelled
    with more than one intent, and ``eval_intents`` that never occur in training.
    Intents are listed rarest first.
    """
    counts = Counter(intents)
    total = len(intents)
    rows = [
        IntentProfile(i, c, c / total, tier_of(c, rare_max=rare_max, frequent_min=frequent_min))
        for i, c in sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))
    ]
    warnings = _warnings(texts, intents, counts, eval_intents, min_count)
    return Profile(
        n_examples=total,
        n_intents=len(counts),
        imbalance_ratio=max(counts.values()) / min(counts.values()),
        median_count=float(median(counts.values())),
        intents=rows,
        warnings=warnings,
    )


def _warnings(
    texts: Sequence[str],
    intents: Sequence[str],
    counts: Counter[str],
    eval_intents: Sequence[str],
    min_count: int,
) -> list[str]:
    out = []
    few = sorted(i for i, c in counts.items() if c < min_count)
    if few:
        out.append(f"{len(few)} intent(s) with fewer than {min_count} examples: {', '.join(few)}")
    pairs = Counter(zip(texts, intents))
    dupes = sum(c - 1 for c in pairs.values() if c > 1)
    if dupes:
        out.append(f"{dupes} exact duplicate example(s) (same text, same intent)")
    by_text: dict[str, set[str]] = defaultdict(set)
    for text, intent in zip(texts, intents):
        by_text[text].add(intent)
    for text, owners in sorted(by_text.items()):
        if len(owners) > 1:
            out.append(f"text {text!r} appears under {len(owners)} intents: {', '.join(sorted(owners))}")
    unseen = sorted(set(eval_intents) - set(counts))
    if unseen:
        out.append(f"{len(unseen)} eval intent(s) missing from train: {', '.join(unseen)}")
    return out
