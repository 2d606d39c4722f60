"""The one exception type for mistakes a user can make and fix."""

from __future__ import annotations


class IntentbalError(Exception):
    """A problem with the user's input, config or environment.

    The message is one line: what was expected, what was found, and how to fix it.
    The CLI prints it without a traceback and exits with status 2. Raised in place of another
    exception, it chains it (``raise IntentbalError(...) from exc``), so ``--debug`` shows the cause.
    """


class TrainingDiverged(IntentbalError):
    """Training produced a non-finite loss or weights: nothing of it is saved."""


def first_line(exc: BaseException) -> str:
    """The first line of another library's exception, to quote inside a one-line error; its type's
    name when it has no message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
