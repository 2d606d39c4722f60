"""The one exception type for mistakes a user can make and fix."""


class IntentbalError(Exception):
    """A problem with the user's input, config or environment.

    The message is one line: what was expected, what was found, and how to fix it.
    The CLI prints it without a traceback and exits with status 2. Raised in place of another
    exception, it chains it (``raise IntentbalError(...) from exc``), so ``--debug`` shows the cause.
    """
