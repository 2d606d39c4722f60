"""``python -m intentbal``: the ``intentbal`` command."""

import sys

from intentbal.cli import main

sys.exit(main())
