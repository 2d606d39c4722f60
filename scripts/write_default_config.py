"""Regenerate configs/default.yaml from the pydantic models in intentbal/config.py of this tree.

The tree's own package is imported, not an installed one: the file must match the code beside it.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intentbal.io.config_yaml import default_yaml  # noqa: E402  (after the tree is on the path)

if __name__ == "__main__":
    target = ROOT / "configs" / "default.yaml"
    target.write_text(default_yaml(), encoding="utf-8")
    print(f"wrote {target}")
