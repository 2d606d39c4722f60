"""Text-level oversampling of rare intents with offline nlpaug augmenters.

Determinism: every synthetic row draws from its own RNG, seeded from a string of
(seed, intent, index) -- string seeds do not depend on ``PYTHONHASHSEED`` -- and
nlpaug's spelling dictionary, built from Python sets, is sorted before use.

Protection: with ``protect_words`` > 0, each rare intent's top discriminative words
(``intentbal.keywords``) are closed to every augmenter while that intent's rows are augmented,
through nlpaug's ``stopwords_regex``, which all the augmenters used here honour: a whitespace
token holding a protected word is neither changed nor deleted (a swap may move it).
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from intentbal.data.keywords import discriminative_words
from intentbal.data.types import IntentData, Provenance
from intentbal.progress import Progress

DUPLICATE = "duplicate"


@dataclass(frozen=True, kw_only=True)
class Synthetic:
    """One augmented row and where it came from."""

    text: str
    intent: str
    source_text: str
    augmenter: str


@dataclass(frozen=True, kw_only=True)
class AugmentResult:
    data: IntentData  # the original rows followed by the synthetic ones
    synthetic: list[Synthetic]
    target: int
    warnings: list[str] = field(default_factory=list)
    protected: dict[str, list[str]] = field(default_factory=dict)  # augmented intent -> its kept words

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.data.intents))


def resolve_target(
    counts: dict[str, int], *, target_count: int | None, target_fraction: float
) -> int:
    """The count rare intents are raised to: ``target_count``, else a fraction of the median."""
    if target_count is not None:
        return target_count
    return max(1, round(target_fraction * median(counts.values())))


def augment_rare(
    data: IntentData,
    *,
    target: int,
    augmenters: Sequence[str],
    seed: int,
    max_attempts: int = 10,
    protect_words: int = 0,
    keep_words: Mapping[str, Sequence[str]] | None = None,
    progress: Progress | None = None,
) -> AugmentResult:
    """Raise every intent with fewer than ``target`` examples to ``target``.

    Each synthetic row comes from one of the intent's own texts (taken in turn), by an
    augmenter drawn at random; outputs equal to their source or to any existing example
    are retried, and after ``max_attempts`` the source is duplicated instead. With
    ``protect_words`` > 0, the augmenters leave each rare intent's top ``protect_words``
    discriminative words (ranked on ``data``) as they are; ``protected`` lists them. ``keep_words``
    (intent to words, such as the words of Rasa entity values) are left intact too.
    """
    tools, warnings = _build_augmenters(augmenters)
    by_intent: dict[str, list[str]] = defaultdict(list)
    for text, intent in zip(data.texts, data.intents):
        by_intent[intent].append(text)
    seen = {_key(t) for t in data.texts}
    rare = sorted(i for i, texts in by_intent.items() if len(texts) < target)
    protected = _protected(data, rare, top_k=protect_words)
    synthetic: list[Synthetic] = []
    for n, intent in enumerate(rare, start=1):
        sources = by_intent[intent]
        guard = _guard([*protected.get(intent, []), *(keep_words or {}).get(intent, [])])
        for k in range(target - len(sources)):
            rng = random.Random(f"{seed}:{intent}:{k}")
            synthetic.append(_one(sources[k % len(sources)], intent, tools, rng, seen, max_attempts, guard))
        if progress:
            progress("augment", n, len(rare))
    made = [Provenance(made_by="augment", detail=s.augmenter, source=s.source_text) for s in synthetic]
    out = data.extended([s.text for s in synthetic], [s.intent for s in synthetic], provenance=made)
    return AugmentResult(data=out, synthetic=synthetic, target=target, warnings=warnings, protected=protected)


@dataclass(frozen=True, kw_only=True)
class AugmentRare:
    """The row transform of :func:`augment_rare` (``augment``): the rare intents raised to the target
    that ``target_count`` or ``target_fraction`` of the median count gives, each synthetic row's
    augmenter and source in its provenance."""

    target_count: int | None
    target_fraction: float
    augmenters: Sequence[str]
    seed: int
    max_attempts: int = 10
    protect_words: int = 0
    keep_words: Mapping[str, Sequence[str]] | None = None
    progress: Progress | None = None
    name: str = "augmentation"

    def run(self, rows: IntentData) -> AugmentResult:
        """:meth:`resample` with what an augment command reports: the target, the words kept and warnings."""
        counts = Counter(rows.intents)
        target = resolve_target(counts, target_count=self.target_count, target_fraction=self.target_fraction)
        return augment_rare(rows, target=target, augmenters=self.augmenters, seed=self.seed,
                            max_attempts=self.max_attempts, protect_words=self.protect_words,
                            keep_words=self.keep_words, progress=self.progress)

    def resample(self, rows: IntentData) -> IntentData:
        return self.run(rows).data


def _protected(data: IntentData, rare: list[str], *, top_k: int) -> dict[str, list[str]]:
    """The rare intents' discriminative words, ranked against every intent of ``data``."""
    if top_k == 0 or not rare:
        return {}
    ranked = discriminative_words(data.texts, data.intents, top_k=top_k)
    return {intent: ranked[intent] for intent in rare}


def _guard(words: list[str]) -> re.Pattern[str] | None:
    """A pattern matching every whitespace token that holds one of ``words`` (as whole words)."""
    if not words:
        return None
    return re.compile(r"(?i).*\b(?:" + "|".join(re.escape(w) for w in words) + r")\b")


def clean_text(text: str) -> str:
    """Undo tokeniser artefacts: ``hasn ' t`` -> ``hasn't``, space before punctuation."""
    text = re.sub(r"(\w)\s*'\s*(s|t|re|ve|ll|d|m)\b", r"\1'\2", text)
    text = re.sub(r"\s+([?.!,;:%)])", r"\1", text)
    text = re.sub(r"([(])\s+", r"\1", text)
    return " ".join(text.split())


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def _one(
    source: str,
    intent: str,
    tools: list[tuple[str, Any]],
    rng: random.Random,
    seen: set[str],
    max_attempts: int,
    guard: re.Pattern[str] | None,
) -> Synthetic:
    for _ in range(max_attempts if tools else 0):
        name, tool = tools[rng.randrange(len(tools))]
        if tool is None:  # plain random oversampling, drawn like any augmenter
            break
        with _seeded(rng.getrandbits(32)), _protecting(tool, guard):
            produced = tool.augment(source)
        text = clean_text(produced[0] if isinstance(produced, list) else str(produced or ""))
        if text and _key(text) not in seen:
            seen.add(_key(text))
            return Synthetic(text=text, intent=intent, source_text=source, augmenter=name)
    return Synthetic(text=source, intent=intent, source_text=source, augmenter=DUPLICATE)


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """nlpaug draws from the global RNGs: seed them, and restore them afterwards."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@contextmanager
def _protecting(tool: Any, guard: re.Pattern[str] | None) -> Iterator[None]:
    """Close the tokens ``guard`` matches to ``tool`` for one call; the tools are shared by all intents."""
    tool.stopwords_regex = guard
    try:
        yield
    finally:
        tool.stopwords_regex = None


def _split(text: str) -> list[str]:
    return text.split()


def _join(tokens: list[str]) -> str:
    return " ".join(tokens)


def _build_augmenters(names: Sequence[str]) -> tuple[list[tuple[str, Any]], list[str]]:
    import nlpaug.augmenter.char as nac
    import nlpaug.augmenter.word as naw

    tok = {"tokenizer": _split, "reverse_tokenizer": _join}
    char = {"aug_char_max": 2, "aug_word_max": 2, **tok}
    factories: dict[str, Callable[[], Any]] = {
        "keyboard": lambda: nac.KeyboardAug(
            include_special_char=False, include_numeric=False, include_upper_case=False, **char
        ),
        "ocr": lambda: nac.OcrAug(**char),
        "char_substitute": lambda: nac.RandomCharAug(
            action="substitute", include_numeric=False, include_upper_case=False, spec_char="", **char
        ),
        "word_swap": lambda: naw.RandomWordAug(action="swap", aug_max=2, **tok),
        "word_delete": lambda: naw.RandomWordAug(action="delete", aug_max=1, **tok),
        "spelling": lambda: _spelling(naw, tok),
        "synonym": lambda: naw.SynonymAug(aug_src="wordnet", aug_max=2, **tok),
    }
    tools, warnings = [], []
    for name in dict.fromkeys(names):
        if name == DUPLICATE:
            tools.append((name, None))
            continue
        if name == "synonym" and not _wordnet_present():
            warnings.append("augmenter 'synonym' skipped: NLTK WordNet data is not installed")
            continue
        tools.append((name, factories[name]()))
    return tools, warnings


def _spelling(naw: Any, tok: dict[str, Any]) -> Any:
    import nlpaug

    path = Path(nlpaug.__file__).parent / "res" / "word" / "spelling" / "spelling_en.txt"
    aug = naw.SpellingAug(dict_path=str(path), aug_max=2, **tok)
    for key, values in aug.model.dict.items():
        aug.model.dict[key] = sorted(values)
    return aug


def _wordnet_present() -> bool:
    try:
        import nltk

        nltk.data.find("corpora/wordnet")
        return True
    except (ImportError, LookupError):
        return False


def synthetic_rows(rows: IntentData) -> list[Synthetic]:
    """The rows of ``rows`` that augmentation made, with their augmenter and source."""
    found = []
    for i in rows.made_by("augment"):
        made = (rows.provenance or [])[i]
        assert made is not None  # made_by lists rows with a provenance
        found.append(Synthetic(text=rows.texts[i], intent=rows.intents[i], source_text=made.source,
                               augmenter=made.detail))
    return found
