"""``intentbal augment``: the rows the recipe's rebalancing would train on, written to a file."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from intentbal.config import Config
from intentbal.data.inputs import load_training, run_inputs
from intentbal.data.rasa import (
    RASA_SUFFIXES,
    augmented_document,
    document_yaml,
    entity_words,
    rasa_nlu_yaml,
    read_document,
)
from intentbal.data.types import IntentData
from intentbal.io.atomic import atomic_write_text
from intentbal.io.folders import output_file
from intentbal.io.tables import TABLE_SUFFIXES, write_table
from intentbal.rebalance.augmentation import AugmentRare, AugmentResult
from intentbal.rebalance.transforms import apply
from intentbal.training.recipe import rebalancing

if TYPE_CHECKING:
    from intentbal.progress import Progress


AUGMENT_COLUMNS = ["text", "intent", "source_text", "augmenter"]


def augment_file(
    config: Config, *, output: Path, overwrite: bool = False, progress: Progress | None = None
) -> AugmentResult:
    """Augment the rare intents of ``data.train`` and write the rows to ``output``, in the format
    its suffix names (.csv, .jsonl, .parquet, or Rasa NLU .yml/.yaml); an existing file is replaced
    only with ``overwrite``.

    Original rows come first with empty provenance; synthetic rows name their source
    text and augmenter.
    """
    with output_file(output, suffixes=(*TABLE_SUFFIXES, *RASA_SUFFIXES), inputs=run_inputs(config),
                     overwrite=overwrite) as output:
        return _augment(config, output=output, progress=progress)


def _augment(config: Config, *, output: Path, progress: Progress | None) -> AugmentResult:
    train = load_training(config, missing="no data to augment: expected a DATA path")
    to_rasa = output.suffix.lower() in RASA_SUFFIXES
    source = config.data.train
    document = read_document(source) if to_rasa and source is not None and \
        source.suffix.lower() in RASA_SUFFIXES else None
    *before, augmentation = rebalancing(config, force=True, progress=progress,
                                        keep_words=entity_words(document) if document is not None else None)
    assert isinstance(augmentation, AugmentRare)  # forced, the augmentation comes last
    result = augmentation.run(apply(before, train))
    if document is not None:  # a Rasa project's file goes back whole: entities, synonyms, regexes, lookups
        doc, duplicated = augmented_document(document, [asdict(s) for s in result.synthetic])
        atomic_write_text(output, document_yaml(doc))
        if duplicated:
            result = replace(result, warnings=[*result.warnings, (
                f"{duplicated} synthetic row(s) lost an entity value of their source and were written as the "
                "source again (augmenter: duplicate), so that every example keeps its entity markup")])
    elif to_rasa:
        atomic_write_text(output, rasa_nlu_yaml(augmented_records(result.data)))
    else:
        write_table(output, augmented_records(result.data), columns=AUGMENT_COLUMNS)
    return result


def augmented_records(rows: IntentData) -> list[dict[str, str]]:
    """Every row: the labelled ones with empty provenance, then the synthetic ones with their source
    text and augmenter."""
    made = rows.provenance or [None] * len(rows)
    return [{"text": t, "intent": i, "source_text": m.source if m else "", "augmenter": m.detail if m else ""}
            for t, i, m in zip(rows.texts, rows.intents, made)]
