"""The run configuration: the single source of truth for every setting.

Each section is a pydantic model with ``extra="forbid"``; every field is described
once, here, and ``configs/default.yaml`` mirrors these defaults.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from intentbal.errors import IntentbalError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

Augmenter = Literal[
    "duplicate", "keyboard", "ocr", "char_substitute", "word_swap", "word_delete", "spelling", "synonym"
]
WeightScheme = Literal["none", "inverse", "sqrt_inverse", "effective_number"]
Precision = Literal["auto", "fp32", "bf16"]
Head = Literal["prototype", "standard"]
StepLoop = Literal["auto", "eager", "bucketed"]
BatchSampling = Literal["shuffled", "balanced"]
IntentNames = Literal["auto", "off"]
Refit = Literal["all", "train", "off"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(Section):
    train: Path | None = Field(None, description="Training data: a file or a Hugging Face dataset.")
    eval: Path | None = Field(None, description="Evaluation data; without it a stratified split of train is held out.")
    text_column: str = Field("text", min_length=1, description="Column holding the utterance.")
    intent_column: str = Field(
        "intent",
        min_length=1,
        description="Column holding the intent; when 'intent' is absent, 'label' or 'category' is used.",
    )
    validation: Path | None = Field(
        None, description="Validation data for choices such as tau and the fallback threshold (never the eval "
        "data); with train.refit all, the shipped model then trains on its rows too."
    )
    validation_fraction: float = Field(
        0.1, ge=0, lt=1, description="Without validation data, the share of each intent with at least 5 examples "
        "held out of train to choose the logit adjustment on; 0 trains on all of it (tau then defaults to 1.0)."
    )
    oos_label: str | None = Field(
        None, description="Intent name of out-of-scope examples in eval and validation data (CLINC150: 'oos'); "
        "kept out of the per-intent scores and used to choose the fallback threshold, which is then saved "
        "with the model. Training data with such rows is refused."
    )
    eval_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of each intent held out when no eval data is given."
    )
    unlabeled: Path | None = Field(
        None, description="Unlabeled utterances (chat logs: .csv/.jsonl/.parquet with the text column, or .txt, "
        "one per line) for self-training (see self_training); null: none."
    )
    descriptions: Path | None = Field(
        None, description="A one-sentence description per intent (.csv with columns intent,description; .yml "
        "intent: description; .json object), used by train.description_weight and train.description_rows; null: none."
    )

    @model_validator(mode="after")
    def _two_columns(self) -> DataConfig:
        if self.text_column == self.intent_column:
            raise ValueError(
                f"expected data.text_column and data.intent_column to name two different columns, found both "
                f"{self.text_column!r}; set the one that holds the intents with --set data.intent_column=COLUMN"
            )
        return self


class ProfileConfig(Section):
    rare_max: int = Field(10, ge=1, description="An intent with at most this many examples is rare.")
    frequent_min: int = Field(50, ge=2, description="An intent with at least this many examples is frequent.")
    min_count: int = Field(5, ge=1, description="Warn about intents with fewer examples than this.")

    @model_validator(mode="after")
    def _ordered(self) -> ProfileConfig:
        if self.frequent_min <= self.rare_max:
            raise ValueError(
                f"profile.frequent_min ({self.frequent_min}) must be greater than "
                f"profile.rare_max ({self.rare_max})"
            )
        return self


class AugmentConfig(Section):
    enabled: bool = Field(
        False, description="Augment intents below the target count (off by default: on BANKING77-LT it did "
        "not improve validation recall with the prototype head; see CHANGELOG.md)."
    )
    target_count: int | None = Field(
        None, gt=0, description="Raise every intent below this count to it; overrides target_fraction."
    )
    target_fraction: float = Field(
        1.0, gt=0, description="Target as a fraction of the median intent count (when no target_count)."
    )
    augmenters: list[Augmenter] = Field(
        default=["keyboard", "ocr", "char_substitute", "word_swap", "word_delete", "spelling"],
        min_length=1,
        description=(
            "augmenters, one drawn at random per synthetic row, from: duplicate (random oversampling), "
            "and the nlpaug ones keyboard, ocr, char_substitute, word_swap, word_delete, spelling, synonym "
            "(needs NLTK WordNet data); duplication is also the fallback"
        ),
    )
    max_per_intent: int | None = Field(
        None, ge=1, description="Random undersampling: keep a seeded sample of at most this many examples of "
        "each intent before augmenting (applies even with enabled false); null keeps every example."
    )
    max_attempts: int = Field(
        10, ge=1, description="Augmenter calls per synthetic row before falling back to duplication."
    )
    protect_words: int = Field(
        3, ge=0, description="Keep each augmented intent's top N discriminative words (one-vs-rest chi² on the "
        "training rows) out of the augmenters' reach, so noise cannot turn 'bot' into 'bkf'; 0 protects nothing."
    )


class ModelConfig(Section):
    name_or_path: str = Field(DEFAULT_MODEL, min_length=1, description="Hugging Face model name or local folder.")
    head: Head = Field(
        "prototype",
        description="prototype: mean-pooled sentence embedding, cosine scores against one vector per intent "
        "started at the intent's mean (the saved folder carries its code: transformers loads it with "
        "trust_remote_code=True); standard: the model's own sequence-classification head (a plain folder).",
    )
    max_length: int = Field(64, ge=8, le=4096, description="Tokens kept per utterance; longer texts are cut.")
    trust_remote_code: bool = Field(
        False, description="Run code shipped with a Hub model; only for models you trust (warns when on)."
    )
    allow_pickle: bool = Field(False, description="Accept pickle-based weights (.bin/.pt); otherwise safetensors only.")


class TrainConfig(Section):
    epochs: float = Field(5, gt=0, le=1000, description="Passes over the (augmented) training data.")
    batch_size: int = Field(32, ge=1, description="Examples per optimisation step.")
    trainable_layers: int | None = Field(
        3, ge=0, description="Train only this many top layers of the encoder (and the head); the embeddings "
        "and the layers below are frozen and, in BERT-family encoders (BERT, MiniLM, RoBERTa), run once per "
        "training row and cached, so each step runs only the top layers. null (or at least the encoder's depth) "
        "trains every layer."
    )
    learning_rate: float = Field(3e-4, gt=0, description="Peak AdamW learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not on biases, norms).")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps with linear warm-up.")
    weighting: WeightScheme = Field(
        "inverse",
        description="Class-weighting scheme of the loss: none, inverse, sqrt_inverse or effective_number (not "
        "applied with batches balanced, which already show every intent equally often).",
    )
    beta: float = Field(0.999, gt=0, lt=1, description="Beta of the effective_number scheme.")
    logit_adjustment: Literal["auto"] | Annotated[float, Field(ge=0)] = Field(
        "auto",
        description="Post-hoc logit adjustment tau (logits - tau * log prior, written into the saved model): "
        "auto chooses it on the validation data, or uses 1.0 without any; a number fixes it; 0 turns it off.",
    )
    loss_adjustment: float = Field(
        0.0, ge=0, description="Logit-adjusted training loss (Menon et al., 2021): the loss sees the logits plus "
        "this tau times the log prior, so the model learns balanced scores; 0 turns it off. Usually with "
        "weighting none; not applied with batches balanced."
    )
    neighbour_margin: float = Field(
        0.0, ge=0, description="Confusable neighbours (prototype head): a row's loss adds this many logits (the head's "
        "are 20 x cosine) to its intent's train.neighbours nearest intents by starting vector, so it must beat them "
        "by that margin; 0: off."
    )
    neighbours: int = Field(3, ge=1, description="The nearest intents train.neighbour_margin applies to.")
    prototype_init: bool = Field(
        True, description="With the prototype head, start each intent's vector at its examples' mean embedding "
        "(else at random)."
    )
    intent_names: IntentNames = Field(
        "auto", description="auto: an intent without a description (data.descriptions) is described by its name "
        "when the name is made of words (card_arrival: 'card arrival'; ids such as intent_017 are not); off: "
        "names are never read. Used by description_weight and description_rows."
    )
    description_weight: float = Field(
        1.0, ge=0, description="With train.prototype_init, each described intent's starting vector also counts its "
        "description's embedding as this many examples, so a rare intent leans on its description; 0: off."
    )
    description_rows: float = Field(
        1.0, ge=0, le=1, description="Train on each described intent's description as one more row of it, weighing "
        "this much of a labelled row in the loss; 0: no such rows."
    )
    batches: BatchSampling = Field(
        "shuffled", description="shuffled: every row once an epoch; balanced: each batch is batch_size / "
        "intent_examples intents drawn at random, with intent_examples rows of each drawn with replacement, so a "
        "rare intent is seen as often as a frequent one (the class weights are then not applied)."
    )
    intent_examples: int = Field(
        4, ge=1, description="With batches balanced, the rows of each intent in a batch (K of P x K)."
    )
    contrastive_weight: float = Field(
        0.0, ge=0, description="Weight of a balanced supervised contrastive term next to the cross-entropy "
        "(prototype head only): each row's normalised embedding is pulled to the batch's rows of its intent and "
        "to its intent's vector, against every intent's rows and vector averaged per intent (Zhu et al., 2022); "
        "0: off."
    )
    contrastive_epochs: float = Field(
        0, ge=0, le=1000, description="Passes of a supervised contrastive stage before the head (prototype head only): "
        "balanced batches, each row pulled to its intent's rows and mean embedding, pushed from every other intent's, "
        "through a projection thrown away afterwards; the fine-tune then starts from the reshaped encoder; 0: off."
    )
    contrastive_temperature: float = Field(
        0.1, gt=0, description="Temperature of the cosine similarities of the contrastive term and stage."
    )
    embedding_smote: bool = Field(
        False, description="SMOTE in embedding space (prototype head only): every row of an intent with fewer "
        "distinct texts than the median also trains on a point between its embedding and another example's."
    )
    soup: int = Field(
        1, ge=1, description="Fine-tune this many models, seeds seed, seed+1, ..., and average their weights into "
        "one (a uniform model soup): an ensemble's steadier decisions at one model's prediction cost, for this "
        "many times the training."
    )
    refit: Refit = Field(
        "all", description="Once tau, the fallback threshold and the report are chosen and measured on hold-outs, "
        "ship a model trained again (same recipe and seed) on: all, every row of data.train and of a "
        "data.validation file (its intents that train has), the evaluated model's tau applied; train, every row "
        "of data.train, its tau chosen on the data.validation file; off: ship the evaluated model. true and false "
        "read as all and off."
    )
    refit_epochs: float | None = Field(
        None, gt=0, le=1000, description="null: a refit trains from the pretrained model like the evaluated one; a "
        "number: it starts from the evaluated model (before its logit adjustment) and trains this many passes over "
        "its rows, its learning rate warmed up and decayed again."
    )
    save_steps: int = Field(
        500, ge=0, description="Checkpoint every this many steps, for --resume; 0 turns checkpoints off."
    )
    precision: Precision = Field(
        "auto", description="Arithmetic of training and of a teacher labelling a pool: auto (bf16 autocast where the "
        "device has native bf16: a GPU that supports it, a CPU with AVX512-BF16 or AMX; else fp32), fp32 or bf16."
    )
    step: StepLoop = Field(
        "auto", description="Training loop: eager (each batch padded to its longest text on the host), bucketed "
        "(batches padded on the device to a few fixed widths, no step waits for the host; on a GPU each width "
        "runs as a CUDA graph) or auto (bucketed on a single GPU without embedding_smote, else eager)."
    )

    @model_validator(mode="after")
    def _intents_per_batch(self) -> TrainConfig:
        if self.batches == "balanced" and self.batch_size < 2 * self.intent_examples:
            raise ValueError(
                f"with train.batches=balanced, expected train.batch_size at least twice train.intent_examples "
                f"(two intents or more in a batch), found batch_size {self.batch_size} and intent_examples "
                f"{self.intent_examples}; raise train.batch_size or lower train.intent_examples"
            )
        return self

    def prototype_options(self) -> list[str]:
        """The options set that work on the prototype head's sentence embeddings, each as the setting
        that turns it off (``train.embedding_smote=false``): refused with the standard head."""
        return [off for off, on in (("train.embedding_smote=false", self.embedding_smote),
                                    ("train.contrastive_weight=0", bool(self.contrastive_weight)),
                                    ("train.contrastive_epochs=0", bool(self.contrastive_epochs)),
                                    ("train.neighbour_margin=0", bool(self.neighbour_margin))) if on]

    @model_validator(mode="after")
    def _neighbours_need_vectors(self) -> TrainConfig:
        if self.neighbour_margin and not self.prototype_init:
            raise ValueError(
                "train.neighbour_margin: expected train.prototype_init=true (neighbours are found among the intents' "
                "starting vectors), found false; set train.prototype_init=true or train.neighbour_margin=0")
        return self

    @model_validator(mode="after")
    def _one_embedding_term(self) -> TrainConfig:
        if self.contrastive_weight and self.embedding_smote:
            raise ValueError(
                "expected at most one of train.contrastive_weight and train.embedding_smote (both reshape the "
                "embedding space), found both; set train.embedding_smote=false or train.contrastive_weight=0"
            )
        return self

    @field_validator("intent_names", mode="before")
    @classmethod
    def _bare_off(cls, value: Any) -> Any:
        """YAML reads a bare ``off`` as false (and ``on`` as true)."""
        return ("auto" if value else "off") if isinstance(value, bool) else value

    @field_validator("refit", mode="before")
    @classmethod
    def _refit_switch(cls, value: Any) -> Any:
        """``refit`` was a switch: true refit on every row, false shipped the evaluated model."""
        return ("all" if value else "off") if isinstance(value, bool) else value


class EvalConfig(Section):
    recall_threshold: float = Field(0.5, ge=0, le=1, description="Intents with recall under this are flagged.")
    fallback_threshold: float | None = Field(
        None, ge=0, le=1, description="Confidence under which a chatbot falls back; when set it is saved with "
        "the model and predict answers fallback_intent under it. null: chosen from data for the report, and "
        "saved with the model only when chosen on out-of-scope examples (data.oos_label)."
    )
    fallback_intent: str = Field(
        "nlu_fallback", min_length=1, description="Intent that predict answers under the fallback threshold."
    )
    fallback_precision: float = Field(
        0.95, gt=0, le=1, description="Without out-of-scope data, the threshold is the lowest whose answered "
        "predictions are this precise."
    )
    plots: bool = Field(True, description="Write report.html and the PNG figures.")
    min_support: int = Field(
        5, ge=1, description="Intents with fewer eval examples are 'insufficient evidence', never pass or fail."
    )
    batch_size: int = Field(128, ge=1, description="Utterances per prediction batch.")


class SelfTrainingConfig(Section):
    threshold: float = Field(
        0.7, ge=0, le=1, description="Teacher confidence (after the logit adjustment) an unlabeled utterance "
        "needs before its label is used (0.7 beat 0.9 and 0.5 on BANKING77-LT validation; see CHANGELOG.md)."
    )
    alpha: float = Field(
        0.5, ge=0, description="CReST rebalancing: of the confident labels of the r-th most frequent of L intents, "
        "the share (n_(L+1-r) / n_1) ** alpha is kept (all of the rarest intent's); 0 keeps every confident label."
    )
    weight: float = Field(
        1.0, gt=0, le=1, description="Loss weight of a pseudo-labelled row, relative to a labelled one (1 beat 0.5 "
        "on BANKING77-LT validation over 5 seeds; see CHANGELOG.md)."
    )
    max_per_intent: Annotated[int, Field(ge=1)] | Literal["largest"] = Field(
        "largest", description="Most pool rows one intent borrows: a number (at least 1), or 'largest', the "
        "labelled count of the most frequent intent, so what is borrowed grows with the labelled rows, not the pool."
    )
    teacher: str | None = Field(
        None, description="The teacher's model, a Hugging Face name or a local folder, fine-tuned by the same recipe "
        "to label the pool (a larger model, say; the shipped student stays model.name_or_path); null: "
        "model.name_or_path."
    )
    steps: Literal["labelled", "all"] = Field(
        "labelled", description="How long the student trains: 'labelled', as many steps as the same fit without "
        "the pool's rows (its time does not grow with the pool); 'all', train.epochs passes over every row."
    )


class Config(Section):
    seed: int = Field(0, ge=0, lt=2**32, description="Seed for the split, augmentation, initialisation and order "
                      "(0 to 2^32 - 1).")
    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The YAML file this config was read from, if any: an input no output may replace."""
        return self._source
    output_dir: Path = Field(Path("runs/intentbal"), description="Where the run is written.")
    data: DataConfig = DataConfig()
    profile: ProfileConfig = ProfileConfig()
    augment: AugmentConfig = AugmentConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvalConfig = EvalConfig()
    self_training: SelfTrainingConfig = SelfTrainingConfig()

    @model_validator(mode="after")
    def _embedding_terms_need_prototypes(self) -> Config:
        """Refused here, before any data or model is loaded (``fine_tune`` checks the model itself)."""
        used = self.train.prototype_options()
        if used and self.model.head != "prototype":
            key = used[0].split("=")[0]
            raise ValueError(
                f"{key}: expected model.head=prototype (it works on the prototype head's sentence embeddings), "
                f"found model.head={self.model.head}; set model.head=prototype or {used[0]}"
            )
        return self


PATH_KEYS = (("data", "train"), ("data", "eval"), ("data", "validation"), ("data", "unlabeled"),
             ("data", "descriptions"), ("output_dir",))


def load_config(
    path: Path | None = None, *, overrides: Sequence[str] = (), values: dict[str, Any] | None = None
) -> Config:
    """Build a Config from an optional YAML file, ``KEY=VALUE`` overrides (values read as
    YAML) and ``values`` (dotted key to a value taken as is, such as a path from the CLI).

    Relative paths inside the file are resolved against the file's folder; paths
    given as overrides are taken relative to the working directory.
    """
    raw: dict[str, Any] = _read_yaml(path) if path is not None else {}
    if path is not None:
        _resolve_paths(raw, Path(path).parent)
    for item in overrides:
        _apply_override(raw, item)
    for key, value in (values or {}).items():
        _set(raw, key, value, item=key)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise IntentbalError(_describe(exc, path)) from exc
    config._source = Path(path) if path is not None else None
    return config


def _read_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        found = "a folder" if path.is_dir() else "nothing"
        raise IntentbalError(f"config {path}: expected a YAML file, found {found}; check the path")
    from intentbal.data.readers import yaml_error

    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IntentbalError(
            f"config {path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); re-save the file as UTF-8"
        ) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise IntentbalError(f"config {path}{yaml_error(exc)}; fix the YAML there "
                             "(indentation, a missing ':' or an unclosed quote or bracket)") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise IntentbalError(f"config {path}: expected a mapping of sections at the top, found {type(raw).__name__}")
    return raw


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    for keys in PATH_KEYS:
        node: Any = raw
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        value = node.get(keys[-1]) if isinstance(node, dict) else None
        if isinstance(value, str) and not Path(value).is_absolute():
            node[keys[-1]] = os.path.normpath(base / value)


def _apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise IntentbalError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.epochs=3")
    try:
        parsed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        parsed = value
    _set(raw, key, parsed, item=item)


def _set(raw: dict[str, Any], key: str, value: Any, *, item: str) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise IntentbalError(f"--set {item!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _close_key(loc: Sequence[Any]) -> str | None:
    """The known key nearest to the unknown one at ``loc`` (``train.epoch`` gives ``train.epochs``)."""
    import difflib

    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return ".".join([*map(str, loc[:-1]), close[0]]) if close else None


def _describe(exc: ValidationError, path: Path | None) -> str:
    where = f"config {path}" if path is not None else "config"
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            hint = f"did you mean {guess!r}? " if (guess := _close_key(err["loc"])) else ""
            problems.append(f"unknown key {key!r}; {hint}see configs/default.yaml for the keys")
        elif err["type"] == "value_error":  # a validator's own sentence says what was expected and found
            reason = str(err.get("ctx", {}).get("error", err["msg"]))
            problems.append(reason if not err["loc"] or f"{key}." in reason else f"{key}: {reason}")
        else:
            found = err.get("input")
            shown = "" if isinstance(found, dict) else f", found {found!r}"
            problems.append(f"{key}: {err['msg'].lower()}{shown}")
    return f"{where}: " + "; ".join(problems)
