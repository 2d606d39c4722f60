"""Lists of names in one line: a message must stay readable at 1,000 intents."""

from __future__ import annotations

from collections.abc import Sequence

LIST_LIMIT = 5  # intent names shown in one terminal line before the rest is counted


def listing(names: Sequence[str], *, see: str | None = None, limit: int = LIST_LIMIT) -> str:
    """``names`` joined by commas, cut after ``limit``: "a, b, c and 12 more; see FILE".

    The full list lives in ``see``.
    """
    names = list(names)
    shown = ", ".join(names[:limit])
    if len(names) <= limit:
        return shown
    return f"{shown} and {len(names) - limit} more" + (f"; see {see}" if see else "")
