"""Per-intent frequency profile and data warnings: pure functions of lists."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Any, Literal

from intentbal.data.overlap import overlap_warning, train_eval_overlap

Tier = Literal["rare", "medium", "frequent"]

SHOWN = 10  # texts shared by several intents listed one per warning line; the rest are counted


@dataclass(frozen=True, kw_only=True)
class IntentProfile:
    intent: str
    count: int
    share: float
    tier: str  # "rare", "medium" or "frequent"


@dataclass(frozen=True, kw_only=True)
class Profile:
    """What the training data looks like, intent by intent, with warnings."""

    n_examples: int
    n_intents: int
    imbalance_ratio: float
    median_count: float
    intents: list[IntentProfile]
    warnings: list[str] = field(default_factory=list)
    eval_only_intents: list[str] = field(default_factory=list)  # eval intents never seen in training
    similar_intents: list[list[str]] = field(default_factory=list)  # names equal but for case, spaces, _ or -
    overlap: dict[str, Any] | None = None  # eval rows that are training rows (see intentbal.data.overlap)

    def counts(self) -> dict[str, int]:
        return {p.intent: p.count for p in self.intents}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tier_of(count: int, *, rare_max: int, frequent_min: int) -> Tier:
    """``rare`` up to ``rare_max`` examples, ``frequent`` from ``frequent_min``, else ``medium``."""
    if count <= rare_max:
        return "rare"
    return "frequent" if count >= frequent_min else "medium"


def profile_intents(
    texts: Sequence[str],
    intents: Sequence[str],
    *,
    eval_intents: Sequence[str] = (),
    eval_texts: Sequence[str] | None = None,
    rare_max: int = 10,
    frequent_min: int = 50,
    min_count: int = 5,
) -> Profile:
    """Count each intent, assign tiers and collect warnings.

    Warnings cover intents under ``min_count``, exact duplicate examples, texts labelled
    with more than one intent, intent names that differ only by case, spaces, underscores
    or hyphens, and ``eval_intents`` that never occur in training. With ``eval_texts``
    (parallel to ``eval_intents``) it also counts eval rows that repeat a training text
    (``overlap``). Intents are listed rarest first; long lists in warnings are cut.
    """
    counts = Counter(intents)
    total = len(intents)
    rows = [
        IntentProfile(intent=i, count=c, share=c / total, tier=tier_of(c, rare_max=rare_max, frequent_min=frequent_min))
        for i, c in sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))
    ]
    warnings = _warnings(texts, intents, counts, eval_intents, min_count)
    similar = similar_intents([*counts, *eval_intents])
    if similar:
        groups = ["/".join(repr(n) for n in g) for g in similar]
        warnings.append(f"intents whose names differ only by case, spaces, underscores or hyphens: "
                        f"{_listing(groups)}; they are trained as different intents: merge or rename them")
    overlap = None
    if eval_texts is not None:
        found = train_eval_overlap(texts, eval_texts, eval_intents)
        overlap = found.to_dict()
        line = overlap_warning(found, see="profile.json")
        warnings += [line] if line else []
    return Profile(
        n_examples=total,
        n_intents=len(counts),
        imbalance_ratio=max(counts.values()) / min(counts.values()),
        median_count=float(median(counts.values())),
        intents=rows,
        warnings=warnings,
        eval_only_intents=sorted(set(eval_intents) - set(counts)),
        similar_intents=similar,
        overlap=overlap,
    )


def intent_key(name: str) -> str:
    """What is left of an intent name without case, underscores, hyphens and extra spaces."""
    return " ".join(name.casefold().replace("_", " ").replace("-", " ").split())


def similar_intents(names: Sequence[str]) -> list[list[str]]:
    """Groups of distinct ``names`` with the same :func:`intent_key` (``Refund``, ``refund ``)."""
    groups: dict[str, set[str]] = defaultdict(set)
    for name in names:
        groups[intent_key(name)].add(name)
    return [sorted(g) for _, g in sorted(groups.items()) if len(g) > 1]


def _listing(names: Sequence[str]) -> str:
    from intentbal.listing import listing

    return listing(names, see="profile.json")


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
        out.append(f"{len(few)} intent(s) with fewer than {min_count} examples: {_listing(few)}")
    pairs = Counter(zip(texts, intents))
    dupes = sum(c - 1 for c in pairs.values() if c > 1)
    if dupes:
        out.append(f"{dupes} exact duplicate example(s) (same text, same intent)")
    by_text: dict[str, set[str]] = defaultdict(set)
    for text, intent in zip(texts, intents):
        by_text[text].add(intent)
    shared = [(text, owners) for text, owners in sorted(by_text.items()) if len(owners) > 1]
    for text, owners in shared[:SHOWN]:
        out.append(f"text {text!r} appears under {len(owners)} intents: {_listing(sorted(owners))}")
    if len(shared) > SHOWN:
        out.append(f"{len(shared) - SHOWN} more text(s) appear under more than one intent")
    unseen = sorted(set(eval_intents) - set(counts))
    if unseen:
        out.append(f"{len(unseen)} eval intent(s) missing from train: {_listing(unseen)}")
    return out

