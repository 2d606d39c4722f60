"""Rasa NLU YAML written back as a Rasa project reads it: entity markup and every other section kept.

``intentbal augment nlu.yml --output out.yml`` returns the input document with synthetic
examples added to the intents that needed them. Everything else of the input is kept as parsed:
the ``synonym``, ``regex`` and ``lookup`` items, other top-level keys (``version``), each
example's entity markup (``[Berlin](city)``, ``[Berlin]{"entity": "city", "role": "to"}``) and
metadata. A synthetic example made from an annotated source carries the same annotations: the
augmenters leave the words of entity values intact (see :func:`entity_words`), and each value is
marked again where it stands in the new text (:func:`annotate`). Comments and quoting styles
are not kept (PyYAML does not read them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intentbal.errors import IntentbalError

ENTITY = re.compile(r"\[(?P<value>[^\]]*)\](?P<annotation>\([^)]*\)|\{[^}]*\})")
WORD = re.compile(r"\w+")


def plain(text: str) -> str:
    """``text`` without entity markup: ``fly to [Berlin](city)`` -> ``fly to Berlin``."""
    return ENTITY.sub(r"\g<value>", text)


@dataclass(frozen=True, kw_only=True)
class RasaDocument:
    """A parsed Rasa NLU file and, per intent, its examples as written (markup included)."""

    doc: dict[str, Any]
    examples: dict[str, list[str]]

    def annotated(self) -> dict[tuple[str, str], str]:
        """(intent, plain text) -> the example as written, for the examples with entity markup."""
        return {(intent, plain(raw)): raw for intent, raws in self.examples.items() for raw in raws
                if ENTITY.search(raw)}


def read_document(path: Path) -> RasaDocument:
    """The Rasa NLU document at ``path`` (already checked by :func:`intentbal.data.readers.load_intents`)."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise IntentbalError(f"{path}: expected Rasa NLU YAML, found a file that cannot be read again ({exc})") \
            from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("nlu"), list):
        raise IntentbalError(f"{path}: expected Rasa NLU YAML with a top-level 'nlu:' list, found none")
    examples: dict[str, list[str]] = {}
    for item in doc["nlu"]:
        if isinstance(item, dict) and "intent" in item:
            examples.setdefault(str(item["intent"]).strip(), []).extend(_raw_examples(item.get("examples")))
    return RasaDocument(doc=doc, examples=examples)


def _raw_examples(examples: Any) -> list[str]:
    if isinstance(examples, list):
        return [str(e["text"]).strip() for e in examples if isinstance(e, dict) and "text" in e]
    return [line.strip()[1:].strip() for line in str(examples or "").splitlines() if line.strip().startswith("-")]


def entity_words(document: RasaDocument) -> dict[str, list[str]]:
    """Per intent, the words of its entity values: the augmenters must leave them as they are."""
    words: dict[str, list[str]] = {}
    for intent, raws in document.examples.items():
        found = {w for raw in raws for m in ENTITY.finditer(raw) for w in WORD.findall(m["value"])}
        if found:
            words[intent] = sorted(found)
    return words


def annotate(text: str, source: str) -> str | None:
    """``text`` (made from the annotated example ``source``) with ``source``'s entity markup on the
    same values, in order; None when a value is no longer in ``text`` as a whole."""
    out, at = [], 0
    for m in ENTITY.finditer(source):
        value = m["value"]
        found = re.search(r"(?<!\w)" + re.escape(value) + r"(?!\w)", text[at:])
        if found is None:
            return None
        start, end = at + found.start(), at + found.end()
        out += [text[at:start], f"[{value}]{m['annotation']}"]
        at = end
    return "".join(out) + text[at:]


def augmented_document(document: RasaDocument, synthetic: Sequence[Mapping[str, str]]) -> tuple[dict[str, Any], int]:
    """The input document with the ``synthetic`` rows (``text``, ``intent``, ``source_text``,
    ``augmenter``) added to their intents, in Rasa's per-example form with the provenance as
    ``metadata``; an annotated source's annotations are carried over. A row whose entity values
    did not survive is written as its source again (``augmenter: duplicate``). Returns the
    document and how many rows that happened to."""
    annotated = document.annotated()
    added: dict[str, list[dict[str, Any]]] = {}
    fallbacks = 0
    for row in synthetic:
        intent, text, source = row["intent"], row["text"], row["source_text"]
        raw = annotated.get((intent, source))
        augmenter = row["augmenter"]
        if raw is not None:
            kept = annotate(text, raw)
            fallbacks += kept is None
            if kept is None:
                text, augmenter = raw, "duplicate"
            else:
                text = kept
        added.setdefault(intent, []).append(
            {"text": text, "metadata": {"augmenter": augmenter, "source_text": source}})
    nlu = []
    for item in document.doc["nlu"]:
        name = str(item["intent"]).strip() if isinstance(item, dict) and "intent" in item else None
        if name is None or name not in added:
            nlu.append(item)
            continue
        examples = item.get("examples")
        listed = list(examples) if isinstance(examples, list) else [{"text": t} for t in _raw_examples(examples)]
        nlu.append({**item, "examples": listed + added.pop(name)})
    return {**document.doc, "nlu": nlu}, fallbacks


def document_yaml(doc: Mapping[str, Any]) -> str:
    """``doc`` as Rasa YAML (``version`` first when present, keys in their order)."""
    import yaml

    return yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True, width=1000)


RASA_SUFFIXES = (".yml", ".yaml")


def rasa_nlu_yaml(rows: Sequence[Mapping[str, object]]) -> str:
    """Rasa NLU YAML (``version: "3.1"``) of ``{text, intent[, source_text, augmenter]}`` rows, one
    ``- intent:`` per intent in first-seen order, in Rasa's per-example form so that a synthetic
    row keeps its provenance as ``metadata``."""
    import yaml

    examples: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        example: dict[str, object] = {"text": row["text"]}
        if row.get("augmenter"):
            example["metadata"] = {"augmenter": row["augmenter"], "source_text": row.get("source_text", "")}
        examples.setdefault(str(row["intent"]), []).append(example)
    nlu = [{"intent": intent, "examples": items} for intent, items in examples.items()]
    return yaml.safe_dump({"version": "3.1", "nlu": nlu}, sort_keys=False, allow_unicode=True, width=1000)
