"""Intent names and descriptions as text: what an intent is, in words an encoder can embed.

A team's intents have names (``card_arrival``, ``lost-or-stolen card``) and may have
one-sentence descriptions (``data.descriptions``). Both say what a rare intent is about when
its few examples barely do. :func:`name_as_text` reads a name as words when it is made of
words; :func:`intent_texts` picks each intent's text, a description before its name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from intentbal.config import IntentNames

SEPARATORS = re.compile(r"[\s_\-./:]+")
# Boundaries inside a token: "cardArrival" -> card|Arrival, "PINCode" -> PIN|Code.
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
LETTERS = re.compile(r"[^\W\d_]+")
DIGITS = re.compile(r"\d+")


def name_as_text(intent: str) -> str | None:
    """The words of an intent name, or None when the name is not made of words.

    The name is cut at spaces, ``_``, ``-``, ``.``, ``/``, ``:`` and camelCase boundaries;
    the words are lowercased, except all-capital ones (``PIN``), and digits are kept
    (``top_up_2fa`` -> "top up 2fa"). The name is made of words when at least half of its runs of
    letters have 2 letters or more (``are_you_a_bot`` is words, ids such as ``a3f9c2`` are not) and
    it is not one run of letters plus numbers (``intent_017``, ``i17``): ``card_arrival``,
    ``lostOrStolenCard`` and ``greeting`` are made of words; ``intent_017``, ``i17``, ``42`` are not.
    """
    runs = LETTERS.findall(intent)
    if not runs or 2 * sum(len(run) >= 2 for run in runs) < len(runs):
        return None
    if len(runs) == 1 and DIGITS.search(intent):
        return None
    words = [w for part in SEPARATORS.split(intent.strip()) for w in CAMEL.split(part) if w]
    return " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in words)


def intent_texts(
    intents: Iterable[str], *, descriptions: Mapping[str, str] | None, names: IntentNames
) -> dict[str, str]:
    """Each intent's text: its description when it has one, else (``names`` "auto") its name as
    words (:func:`name_as_text`); intents with neither are left out."""
    out: dict[str, str] = {}
    for intent in intents:
        text = (descriptions or {}).get(intent) or (name_as_text(intent) if names == "auto" else None)
        if text:
            out[intent] = text
    return out
