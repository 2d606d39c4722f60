"""The config written as YAML: a run's resolved ``config.yaml`` and ``configs/default.yaml``."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel

from intentbal.config import Config


def config_to_yaml(config: Config) -> str:
    """The resolved config as YAML, paths as strings."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def default_yaml() -> str:
    """``configs/default.yaml``: every key with its default, described from the models of
    :mod:`intentbal.config`. Its output folder is written as seen from ``configs/`` (paths resolve
    against a config's folder), so it is the project's ``runs/intentbal``, where a run without a
    config writes from the project's root."""
    lines = [
        "# intentbal: every config key with its default value. Generated from intentbal/config.py",
        "# by scripts/write_default_config.py; relative paths are resolved against this file's folder",
        "# (configs/), so ../runs/intentbal is the project's runs/intentbal.",
    ]
    _render(Config(output_dir=Path("..") / Config().output_dir), lines, indent="")
    return "\n".join(lines) + "\n"


def _render(section: BaseModel, lines: list[str], *, indent: str) -> None:
    for name, field in type(section).model_fields.items():
        value = getattr(section, name)
        if isinstance(value, BaseModel):
            lines += ["", f"{indent}{name}:"]
            _render(value, lines, indent=indent + "  ")
            continue
        lines.append(f"{indent}# {field.description}")
        dumped = yaml.safe_dump({name: value if not isinstance(value, Path) else str(value)},
                                default_flow_style=True, width=1000).strip()[1:-1]
        lines.append(f"{indent}{dumped}")
