"""Regenerate configs/default.yaml from the pydantic models in intentbal/config.py."""

from pathlib import Path

from intentbal.config import default_yaml

if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"
    target.write_text(default_yaml(), encoding="utf-8")
    print(f"wrote {target}")
