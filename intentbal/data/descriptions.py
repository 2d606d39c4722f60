"""Intent descriptions: one sentence per intent, read from a file (``data.descriptions``)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from intentbal.config import IntentNames
from intentbal.data.readers import read_text, yaml_error
from intentbal.errors import IntentbalError

DESCRIPTION_COLUMNS = ("intent", "description")


def load_descriptions(path: str | Path) -> dict[str, str]:
    """Intent to one-sentence description, in file order, from ``.csv`` (columns ``intent`` and
    ``description``), ``.yml``/``.yaml`` (a mapping ``intent: description``) or ``.json`` (an object).

    Every intent once, every description a non-empty string; anything else raises
    :class:`IntentbalError` naming the file and, where it can, the line.
    """
    path = Path(path)
    if not path.is_file():
        found = "a folder" if path.is_dir() else "nothing"
        raise IntentbalError(f"{path}: expected a descriptions file (.csv, .yml or .json), found {found}; "
                             "check data.descriptions")
    suffix = path.suffix.lower()
    readers = {".csv": _descriptions_csv, ".yml": _descriptions_yaml, ".yaml": _descriptions_yaml,
               ".json": _descriptions_json}
    if suffix not in readers:
        raise IntentbalError(f"{path}: expected descriptions as .csv (intent,description), .yml/.yaml "
                             f"(intent: description) or .json (an object), found {suffix or 'no extension'}")
    text = read_text(path, expected="intents and their descriptions")
    pairs = readers[suffix](path, text)
    if not pairs:
        raise IntentbalError(f"{path}: expected intents and their descriptions, found none; "
                             "add one 'intent: description' per intent")
    return _description_map(pairs)


Described = list[tuple[str, Any, str]]  # (intent, description as found, where)


def _description_map(pairs: Described) -> dict[str, str]:
    out: dict[str, str] = {}
    first: dict[str, str] = {}
    for intent, description, where in pairs:
        intent = str(intent).strip()
        if not intent:
            raise IntentbalError(f"{where}: expected an intent name, found an empty one; fill or remove it")
        if not isinstance(description, str) or not description.strip():
            found = ("an empty one" if description is None or not str(description).strip()
                     else f"a {type(description).__name__}")
            raise IntentbalError(f"{where}: expected a one-sentence description of intent {intent!r} as text, "
                                 f"found {found}; write it as a string or remove the intent")
        if intent in out:
            raise IntentbalError(f"{where}: intent {intent!r} is described twice (first at {first[intent]}); "
                                 "keep one description per intent")
        out[intent], first[intent] = " ".join(description.split()), where
    return out


def _descriptions_csv(path: Path, text: str) -> Described:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    pairs: Described = []
    try:
        header = [h.strip() for h in next(reader)]
        missing = [c for c in DESCRIPTION_COLUMNS if c not in header]
        if missing:
            raise IntentbalError(f"{path}:1: expected the columns 'intent' and 'description', found "
                                 f"{', '.join(map(repr, header))}; name the header 'intent,description'")
        ii, di = header.index("intent"), header.index("description")
        for row in reader:
            if row:
                where = f"{path}:{reader.line_num}"
                if len(row) != len(header):
                    raise IntentbalError(f"{where}: expected {len(header)} fields as in the header, found "
                                         f"{len(row)}; quote descriptions that contain a comma")
                pairs.append((row[ii], row[di], where))
    except csv.Error as exc:
        raise IntentbalError(f"{path}:{reader.line_num}: malformed CSV ({exc}); check the quotes on that line") \
            from exc
    return pairs


def _descriptions_yaml(path: Path, text: str) -> Described:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise IntentbalError(f"{path}{yaml_error(exc)}; fix the YAML there") from exc
    if not isinstance(root, yaml.MappingNode):
        raise IntentbalError(f"{path}: expected a mapping of intent: description, found {_node_kind(root)}; "
                             "write one 'intent: description' per line")
    pairs: Described = []
    for key, value in root.value:
        where = f"{path}:{key.start_mark.line + 1}"
        if not isinstance(key, yaml.ScalarNode):
            raise IntentbalError(f"{where}: expected an intent name as the key, found {_node_kind(key)}; "
                                 "write one 'intent: description' per line")
        if key.value == "nlu" and isinstance(value, yaml.SequenceNode):
            raise IntentbalError(f"{where}: expected descriptions (intent: description), found Rasa NLU training "
                                 "data; pass the descriptions file, not nlu.yml")
        if not isinstance(value, yaml.ScalarNode):
            raise IntentbalError(f"{where}: expected the description of intent {key.value!r} as text, found "
                                 f"{_node_kind(value)}; write one 'intent: description' per line")
        pairs.append((key.value, None if value.tag.endswith(":null") else value.value, where))
    return pairs


def _node_kind(node: Any) -> str:
    import yaml

    if node is None:
        return "nothing"
    return {yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}.get(type(node), "text")


def _descriptions_json(path: Path, text: str) -> Described:
    def unique(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                raise IntentbalError(f"{path}: intent {key!r} is described twice; keep one description per intent")
            seen.add(key)
        return dict(items)

    try:
        doc = json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as exc:
        raise IntentbalError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg}); fix the file") from exc
    if not isinstance(doc, dict):
        kind = "an array" if isinstance(doc, list) else f"a {type(doc).__name__}"
        raise IntentbalError(f"{path}: expected a JSON object of intent: description, found {kind}; "
                             'write {"intent": "description", ...}')
    return [(intent, description, f"{path}: intent {intent!r}") for intent, description in doc.items()]


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
