"""How long library calls say how far they have got: the callback behind the CLI's bars."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``, called as ``stage`` advances; ``done == total`` ends it."""


@runtime_checkable
class NotedProgress(Protocol):
    """A :data:`Progress` that can also show a short note beside a stage's bar (the training loss).

    Any plain callable still works wherever a ``Progress`` is taken: it only counts.
    """

    def __call__(self, stage: str, done: int, total: int, /) -> None: ...

    def note(self, stage: str, text: str) -> None: ...


def shows_notes(progress: Progress | None) -> bool:
    """Whether ``progress`` shows notes, so a note is worth computing."""
    return isinstance(progress, NotedProgress)


def note(progress: Progress | None, stage: str, text: str) -> None:
    """Show ``text`` beside ``stage``'s bar where ``progress`` can; otherwise nothing."""
    if isinstance(progress, NotedProgress):
        progress.note(stage, text)


@dataclass(frozen=True, kw_only=True)
class Suffixed:
    """``progress`` with ``suffix`` after each stage's name (a second model's bars are new ones);
    notes pass through."""

    progress: Progress
    suffix: str

    def __call__(self, stage: str, done: int, total: int, /) -> None:
        self.progress(f"{stage} {self.suffix}", done, total)

    def note(self, stage: str, text: str) -> None:
        note(self.progress, f"{stage} {self.suffix}", text)


def suffixed(progress: Progress | None, suffix: str) -> Progress | None:
    """:class:`Suffixed`, or None without a callback."""
    return None if progress is None else Suffixed(progress=progress, suffix=suffix)
