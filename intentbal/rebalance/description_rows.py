"""Description rows: each described intent's text (its description, or its name as words) trains
as one more row of it (``train.description_rows``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from intentbal.data.types import IntentData, Provenance


@dataclass(frozen=True, kw_only=True)
class DescriptionRows:
    """The row transform: one row per intent of ``texts`` (intent to text), weighing ``weight``."""

    texts: Mapping[str, str]
    weight: float
    name: str = "description rows"

    def resample(self, rows: IntentData) -> IntentData:
        return rows.extended(list(self.texts.values()), list(self.texts), weight=self.weight,
                             provenance=[Provenance(made_by="description")] * len(self.texts))
