"""What to label next: unlabelled utterances ranked for the intents that need examples most.

The intents come from a report (those failing, at risk, or with too little evidence), else
from the training counts (the rare ones), or are named. For each, the pool's texts the model
answers with it are *likely* examples; texts where it comes a close second are *near misses*,
which show what it is confused with. The ranking is pure functions of lists and a
probability array; :func:`intentbal.commands.suggest.suggest_file` is the job that loads a model
and a pool and writes the table for a person to confirm.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from intentbal.data.overlap import normalise, seen_texts
from intentbal.errors import IntentbalError
from intentbal.listing import listing

REPORT_REASONS = ("fail", "at_risk", "insufficient_evidence", "not_evaluable")  # report.json statuses that select
RARE, ASKED = "rare", "asked"
LIKELY, NEAR_MISS = "likely", "near_miss"
PER_INTENT = 20
MARGIN = 0.2
COLUMNS = ["suggested_intent", "reason", "kind", "rank", "text", "probability", "predicted", "confirmed_intent"]
CHUNK = 8192  # rows of the probability array handled at once, to bound the memory of large pools


@dataclass(frozen=True, kw_only=True)
class Selection:
    """The intents to suggest texts for, each with why (``reason``), in the order to list them."""

    reasons: dict[str, str]
    source: str  # what chose them: a report path, the model's training counts, or --intents
    unknown: list[str]  # intents the source named that the model cannot predict, left out


@dataclass(frozen=True, kw_only=True)
class Pool:
    """The unlabelled texts to rank: each once, none a training text."""

    texts: list[str]
    duplicates: int  # rows dropped as repeats of an earlier one, once normalised
    in_training: int  # rows dropped as training texts, once normalised


@dataclass(frozen=True, kw_only=True)
class Suggestion:
    """One pool text proposed for ``intent``; ``rank`` counts from 1 within the intent and kind."""

    intent: str
    kind: str  # LIKELY: the model's top intent; NEAR_MISS: second, within the margin of ``predicted``
    rank: int
    index: int  # row of the pool
    probability: float  # of ``intent``
    predicted: str  # the model's most likely intent


@dataclass(frozen=True, kw_only=True)
class SuggestResult:
    selection: Selection
    pool: Pool
    pool_rows: int  # rows of the unlabelled file, before deduplication
    suggestions: list[Suggestion]
    truncated: int  # pool texts longer than the model's max_length, cut to it


def from_report(report: Mapping[str, Any], known: Sequence[str], *, source: str) -> Selection:
    """The intents whose ``report.json`` status is one of ``REPORT_REASONS``, in the report's
    order (rarest first), the status as the reason. Intents ``known`` to the model only count."""
    rows = report["intents"]
    if not {r["intent"] for r in rows} & set(known):
        raise IntentbalError(
            f"{source}: expected a report on this model's intents ({listing(known)}), found none of them; "
            "pass --report PATH of an evaluation of this model"
        )
    chosen = {r["intent"]: r["status"] for r in rows if r.get("status") in REPORT_REASONS}
    return _known(chosen, known, source)


def from_counts(counts: Mapping[str, int], known: Sequence[str], *, rare_max: int, source: str) -> Selection:
    """The intents trained on at most ``rare_max`` examples, rarest first, with reason ``rare``."""
    rare = sorted((i for i, n in counts.items() if n <= rare_max), key=lambda i: (counts[i], i))
    return _known(dict.fromkeys(rare, RARE), known, source)


def asked(names: Sequence[str], known: Sequence[str], *, model: str) -> Selection:
    """``names`` as given (reason ``asked``); a name the model does not know is an error that
    suggests the closest one."""
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise IntentbalError(
                f"--intents: expected intents of model {model}, found {name!r}{hint}; "
                f"it knows {listing(sorted(known))}"
            )
    return Selection(reasons=dict.fromkeys(names, ASKED), source="--intents", unknown=[])


def _known(chosen: dict[str, str], known: Sequence[str], source: str) -> Selection:
    names = set(known)
    return Selection(reasons={i: r for i, r in chosen.items() if i in names}, source=source,
                     unknown=[i for i in chosen if i not in names])


def new_texts(texts: Sequence[str], *, train_hashes: dict[str, list[str]] | None = None) -> Pool:
    """``texts`` without repeats and, with ``train_hashes`` (a model's ``train_text_sha1``),
    without training texts; both compared once normalised (case, spaces and punctuation, see
    :func:`intentbal.data.overlap.normalise`), the first of repeats kept, order otherwise kept."""
    seen: set[str] = set()
    unique = []
    for text in texts:
        key = normalise(text)
        if key not in seen:
            seen.add(key)
            unique.append(text)
    trained = seen_texts(train_hashes, unique) if train_hashes else [False] * len(unique)
    kept = [t for t, was in zip(unique, trained) if not was]
    return Pool(texts=kept, duplicates=len(texts) - len(unique), in_training=len(unique) - len(kept))


def top_two(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The column of each row's largest and second-largest value (ties: the earlier column)."""
    top = np.empty(len(probs), dtype=np.int64)
    second = np.empty(len(probs), dtype=np.int64)
    for start in range(0, len(probs), CHUNK):
        part = np.array(probs[start:start + CHUNK], dtype=np.float64)
        best = part.argmax(axis=1)
        part[np.arange(len(part)), best] = -np.inf
        top[start:start + CHUNK], second[start:start + CHUNK] = best, part.argmax(axis=1)
    return top, second


def rank_candidates(
    probs: np.ndarray, intents: Sequence[str], selected: Sequence[str], *,
    per_intent: int = PER_INTENT, margin: float = MARGIN,
) -> list[Suggestion]:
    """For each of ``selected`` in order, up to ``per_intent`` likely rows, then up to ``per_intent``
    near misses, each kind by the intent's probability, highest first (ties: the earlier row).

    ``probs`` has one row per text and one column per intent of ``intents``. A row is likely for
    the intent it scores highest; a near miss for the one it scores second when that probability
    is at most ``margin`` under the highest. A text can be listed for two intents.
    """
    if per_intent < 1 or not 0 <= margin <= 1:
        raise ValueError(f"need per_intent >= 1 and 0 <= margin <= 1, got {per_intent} and {margin}")
    column = {intent: c for c, intent in enumerate(intents)}
    top, second = top_two(probs)
    rows = np.arange(len(probs))
    close = (probs[rows, top] - probs[rows, second] <= margin) & (top != second)
    out = []
    for intent in selected:
        c = column[intent]
        for kind, members in ((LIKELY, top == c), (NEAR_MISS, (second == c) & close)):
            found = np.flatnonzero(members)
            best = found[np.argsort(-probs[found, c], kind="stable")][:per_intent]
            out += [Suggestion(intent=intent, kind=kind, rank=rank, index=int(i), probability=float(probs[i, c]),
                               predicted=intents[int(top[i])])
                    for rank, i in enumerate(best, start=1)]
    return out


def suggestion_rows(suggestions: Sequence[Suggestion], selection: Selection, texts: Sequence[str]) -> list[dict]:
    """One row of ``COLUMNS`` per suggestion, ``confirmed_intent`` empty for a person to fill."""
    return [{"suggested_intent": s.intent, "reason": selection.reasons[s.intent], "kind": s.kind, "rank": s.rank,
             "text": texts[s.index], "probability": round(s.probability, 4), "predicted": s.predicted,
             "confirmed_intent": ""} for s in suggestions]
