"""The model record: ``intentbal.json`` in a saved model folder, what made the model and what it needs.

One typed record, written from the config and the fit, never copied by hand: the full resolved
config (every field), the SHA-256 of every file training read, the counts the model trained on,
the logit adjustment, the fallback threshold saved with it and the hashes of its training texts.
The model card is rendered from it alone. Paths are kept as file names: a saved folder names no
folder of the machine that trained it. A record of the earlier form (0.1, with a ``recipe`` of
selected settings instead of the config) still loads.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intentbal.config import Config
from intentbal.errors import IntentbalError, first_line

log = logging.getLogger(__name__)

RECORD_FILE = "intentbal.json"
FORMAT = 2
INPUT_ROLES = ("train", "validation", "eval", "unlabeled", "descriptions")


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileDigest(_Part):
    """A file training read: its name (no folder) and the SHA-256 of its bytes (of every file of a
    saved dataset folder; None for a Hub dataset name)."""

    name: str
    sha256: str | None


class TauRecord(_Part):
    tau: float = Field(ge=0, description="The post-hoc logit adjustment baked into the output bias.")
    chosen_on: str = Field(description="Where tau was chosen: given, validation, held out of train or default.")


class FallbackRecord(_Part):
    threshold: float = Field(ge=0, le=1, description="Under this confidence predict answers the fallback intent.")
    chosen_on: str
    intent: str = Field(min_length=1)


class TextHashes(_Part):
    """Short SHA-1 prefixes of the training texts, as given and normalised (see :mod:`intentbal.data.overlap`)."""

    exact: list[str] = Field(default_factory=list)
    normalised: list[str] = Field(default_factory=list)


class ModelRecord(BaseModel):
    """``intentbal.json``: written by every ``train``, read by every command that loads a model."""

    model_config = ConfigDict(extra="forbid")

    format: int = FORMAT
    intentbal_version: str = ""
    config: Config | None = Field(None, description="The full resolved config (None in records of the earlier form).")
    recipe: dict[str, Any] | None = Field(None, description="Earlier form only: the settings the card showed.")
    files: dict[str, FileDigest] = Field(default_factory=dict, description="What training read, by role.")
    max_length: int = Field(ge=1, description="Tokens kept per text when predicting.")
    train_counts: dict[str, int] = Field(default_factory=dict)
    augmented_counts: dict[str, int] = Field(default_factory=dict)
    pseudo_counts: dict[str, int] = Field(default_factory=dict)
    class_weights: dict[str, float] = Field(default_factory=dict)
    logit_adjustment: TauRecord | None = None
    refit: bool = False
    train_text_sha1: TextHashes | None = None
    fallback: FallbackRecord | None = None
    descriptions: dict[str, str] = Field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=False), indent=2, ensure_ascii=False) + "\n"

    def settings(self) -> dict[str, Any]:
        """The training settings the model card shows, from the config (or an earlier record's recipe)."""
        if self.config is None:
            return dict(self.recipe or {})
        from intentbal.training.losses import loss_adjustment_of, weighting_of

        c = self.config
        m, t, a = c.model, c.train, c.augment
        return {
            "base_model": m.name_or_path if _hub_name(m.name_or_path) else None,
            "head": m.head, "max_length": m.max_length, "weighting": weighting_of(t), "epochs": t.epochs,
            "learning_rate": t.learning_rate, "batch_size": t.batch_size, "loss_adjustment": loss_adjustment_of(t),
            "embedding_smote": t.embedding_smote, "soup": t.soup, "seed": c.seed, "intent_names": t.intent_names,
            "description_weight": t.description_weight, "description_rows": t.description_rows,
            "trainable_layers": t.trainable_layers, "batches": t.batches, "intent_examples": t.intent_examples,
            "contrastive_weight": t.contrastive_weight, "contrastive_epochs": t.contrastive_epochs,
            "contrastive_temperature": t.contrastive_temperature, "neighbour_margin": t.neighbour_margin,
            "neighbours": t.neighbours, "refit": t.refit, "refit_epochs": t.refit_epochs,
            "warmup_ratio": t.warmup_ratio, "weight_decay": t.weight_decay, "precision": t.precision, "step": t.step,
            "self_training": c.self_training.model_dump() if c.data.unlabeled is not None else None,
            "augmentation": {"augmenters": list(a.augmenters), "target_count": a.target_count,
                             "target_fraction": a.target_fraction} if a.enabled else None,
            "max_per_intent": a.max_per_intent,
        }


def portable(config: Config) -> Config:
    """``config`` with every path reduced to its file name, and a local base model (or teacher) to its
    folder's name (``./NAME``, never read as a Hub name): what a saved folder may say of the machine that
    trained it."""
    d = config.data
    data = d.model_copy(update={k: Path(getattr(d, k)).name if getattr(d, k) is not None else None
                                for k in ("train", "eval", "validation", "unlabeled", "descriptions")})
    model = config.model.model_copy(update={"name_or_path": _portable_model(config.model.name_or_path)})
    teacher = config.self_training.teacher
    self_training = config.self_training.model_copy(
        update={"teacher": None if teacher is None else _portable_model(teacher)})
    return config.model_copy(update={"data": data, "model": model, "self_training": self_training,
                                     "output_dir": Path(config.output_dir.name)})


def _portable_model(name: str) -> str:
    return name if _hub_name(name) else f"./{Path(name).name}"


def input_digests(config: Config) -> dict[str, FileDigest]:
    """The name and SHA-256 of each file training read (``data.train``, ``validation``, ``eval``,
    ``unlabeled``, ``descriptions``), by role."""
    from intentbal.io.digests import input_digest

    out = {}
    for role in INPUT_ROLES:
        path = getattr(config.data, role)
        if path is not None:
            digest = input_digest(path)
            out[role] = FileDigest(name=Path(str(path).split("#")[0]).name, sha256=digest.sha256)
    return out


def read_record(model_dir: str | Path) -> ModelRecord | None:
    """The folder's ``intentbal.json``, either form; None for a folder without one (a foreign
    model). An intentbal folder (it carries the head's ``modeling.py``) that lost its record loads,
    with a warning that what the record held (the fallback threshold, the max length, the training
    counts) is unknown. A damaged record is one line naming the file and the fix."""
    folder = Path(model_dir)
    path = folder / RECORD_FILE
    if not path.is_file():
        if (folder / "modeling.py").is_file():
            log.warning("model %s: found no %s beside the weights, so its saved fallback threshold, max length and "
                        "training counts are unknown: predicting without a fallback at model.max_length; restore "
                        "the file from the run folder's copy to use them", model_dir, RECORD_FILE)
        return None
    fix = "restore it from a copy of the folder, or train again"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IntentbalError(f"{path}: expected the JSON record intentbal saved with the model, found it unreadable "
                             f"({first_line(exc)}); {fix}") from exc
    if not isinstance(raw, dict):
        raise IntentbalError(f"{path}: expected the JSON object intentbal saved with the model, found "
                             f"{type(raw).__name__}; {fix}")
    try:
        return ModelRecord.model_validate(raw if "format" in raw else _from_earlier_form(raw))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg'].lower()}" for e in exc.errors())
        raise IntentbalError(f"{path}: expected intentbal's record of the model, found {problems}; {fix} (a record "
                             "written by a newer intentbal needs that version)") from exc


def _from_earlier_form(raw: dict[str, Any]) -> dict[str, Any]:
    """An intentbal 0.1 record (``recipe`` instead of ``config``, no ``format``) in today's shape."""
    known = set(ModelRecord.model_fields) - {"format", "config", "files"}
    out = {k: v for k, v in raw.items() if k in known}
    out["format"] = 1
    if "max_length" not in out:
        out["max_length"] = (raw.get("recipe") or {}).get("max_length", 64)
    return out


def _hub_name(name: str) -> bool:
    """A Hugging Face Hub name ("model" or "owner/model") that is not a local path."""
    import re

    local = Path(name).expanduser().exists() or name.startswith((".", "/", "~"))
    return not local and re.match(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$", name) is not None
