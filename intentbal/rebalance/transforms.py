"""The row-transform contract: every change to what a model trains on is a transform, rows in and
rows out (imbalanced-learn's ``fit_resample``), and the recipe is their ordered list.

A transform never changes its input; it returns the rows to train on, in a documented order, each
row it adds carrying its :class:`~intentbal.data.types.Provenance` (which transform made it, from
what). So every consumer reads one thing: the augmentation file, the borrowed pseudo-labels, the
counts the report shows, the checkpoint's fingerprint. A transform is seeded by its constructor and
testable alone, without a model or a trainer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from intentbal.data.types import IntentData

log = logging.getLogger(__name__)


@runtime_checkable
class RowTransform(Protocol):
    """Rows in, rows out with provenance."""

    @property
    def name(self) -> str:
        """What the transform is, in words (``augmentation``)."""
        ...

    def resample(self, rows: IntentData) -> IntentData:
        """The rows to train on instead of ``rows`` (which are left as they are)."""
        ...


def apply(transforms: Sequence[RowTransform], rows: IntentData) -> IntentData:
    """``rows`` through each transform in turn."""
    for transform in transforms:
        before = len(rows)
        rows = transform.resample(rows)
        log.debug("row transform %s: %d rows in, %d out", transform.name, before, len(rows))
    return rows
