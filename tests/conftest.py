"""Shared fixtures: a tiny random BERT with a tokenizer trained on the spot, and small data."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from intentbal.data.types import IntentData

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "datasets"

# A toy support bot: each intent has its own words, so a tiny model can learn it quickly.
TOY = {
    "track_order": ["where is my order", "track my parcel please", "has my order shipped yet",
                    "order status update", "when will my parcel arrive", "is my package on the way",
                    "where is the parcel i ordered", "track order number"],
    "refund": ["i want my money back", "refund this purchase", "please refund me",
               "money back for the broken item", "how do i get a refund", "refund my payment"],
    "password": ["reset my password", "forgot my password", "password not working",
                 "change the password on my login"],
    "fraud": ["someone stole my card", "fraud on my account", "stolen card used"],
}
# A few eval rows of the toy intents, for runs that only need some eval data.
TOY_EVAL = [("where is my parcel now", "track_order"), ("refund me please", "refund"), ("stolen card", "fraud")]


def run_cli(*args) -> int:
    """The CLI's exit status for ``args`` (paths welcome), run in this process."""
    from intentbal.cli import main

    return main([str(a) for a in args])


def set_args(overrides: Iterable[str]) -> list[str]:
    """``--set KEY=VALUE`` arguments for each override."""
    return [arg for override in overrides for arg in ("--set", override)]


def one_line_error(capsys: pytest.CaptureFixture, *fragments: str) -> str:
    """The CLI's error line, checked to be the one ``intentbal: error:`` line of stderr, its last,
    without a traceback, containing every fragment."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    # progress lines (INFO, plain text) may come first; the error is one line, the last, and there is no other
    assert err.endswith("\n") and lines and lines[-1].startswith("intentbal: error: "), err
    assert sum(line.startswith("intentbal: error") for line in lines) == 1 and "Traceback" not in err, err
    assert not any(line.startswith(("  ", "\t")) for line in lines), err  # nothing that continues a message
    for fragment in fragments:
        assert fragment in lines[-1], err
    return lines[-1] + "\n"


def toy_rows() -> list[tuple[str, str]]:
    return [(text, intent) for intent, texts in TOY.items() for text in texts]


def toy_data() -> IntentData:
    """The toy rows as loaded data."""
    from intentbal.data.types import IntentData

    rows = toy_rows()
    return IntentData([t for t, _ in rows], [i for _, i in rows], "toy")


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file with a header, as dicts."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON Lines file."""
    import json

    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "intent")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def toy_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "train.csv", toy_rows())


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT with random weights and a WordPiece tokenizer trained on the toy texts."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    corpus = [t for t, _ in toy_rows()] + ["the a an is my me please how what when why who"]
    # the vocabulary learned from the corpus: every word whole, every character alone and as a word's
    # continuation, numbered in sorted order (WordPieceTrainer breaks ties between equally frequent
    # merges in a hash order that changes from process to process, and so would the model)
    words = {w for text in corpus for w, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text))}
    chars = {c for w in words for c in w}
    learned = sorted(words | chars | {f"##{c}" for c in chars})
    tok.model = models.WordPiece({t: i for i, t in enumerate(specials + learned)}, unk_token="[UNK]")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                             cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(folder)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_without_dropout(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """The tiny BERT with every dropout probability 0: two training loops on it can be compared step
    by step (dropout draws its masks per tensor shape, and the loops pad to different shapes)."""
    import json
    import shutil

    folder = tmp_path_factory.mktemp("tiny-bert-no-dropout")
    shutil.copytree(tiny_model, folder, dirs_exist_ok=True)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def fast_overrides(tiny_model: Path) -> list[str]:
    """Config overrides that train the tiny model in a second or two."""
    return fast_settings(tiny_model)


def fast_settings(tiny_model: Path) -> list[str]:
    """The overrides of :func:`fast_overrides`, for fixtures of a wider scope."""
    return [
        f"model.name_or_path={tiny_model}",
        "model.max_length=32",
        "train.epochs=15",
        "train.batch_size=8",
        "train.learning_rate=0.003",
        "augment.enabled=true",
        "augment.target_count=6",
        "data.validation_fraction=0",  # keep every toy example for training; tests of the hold-out set it
    ]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """A finished ``intentbal train`` run of the tiny model on the toy data, with eval data: read-only."""
    folder = tmp_path_factory.mktemp("trained")
    train = write_csv(folder / "train.csv", toy_rows())
    evalset = write_csv(folder / "eval.csv", [
        ("where is my parcel now", "track_order"), ("track the order please", "track_order"),
        ("refund me please", "refund"), ("i want a refund", "refund"), ("i forgot the password", "password"),
        ("my card was stolen", "fraud"), ("fraud on my card", "fraud"), ("hello there", "greeting"),
    ])
    assert run_cli("train", "--train", train, "--eval", evalset, "--output", folder / "run",
                   *set_args(fast_settings(tiny_model))) == 0
    return folder / "run"


# Out-of-scope examples (data.oos_label=oos): requests a support bot is not for.
OOS = ["what is the weather like today", "tell me a joke", "play some jazz music",
       "book a table for two tonight", "who won the football game", "translate hello into french"]


def oos_rows() -> list[tuple[str, str]]:
    """A few in-scope examples of every toy intent and every out-of-scope one."""
    inscope = [("where is my parcel now", "track_order"), ("refund me please", "refund"),
               ("i forgot the password", "password"), ("my card was stolen", "fraud"),
               ("has my parcel shipped", "track_order"), ("i want a refund", "refund")]
    return inscope + [(text, "oos") for text in OOS]


@pytest.fixture(scope="session")
def oos_run(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """The run folder of the tiny model trained on the toy data with ``data.oos_label=oos`` and
    out-of-scope examples in its validation and eval data."""
    folder = tmp_path_factory.mktemp("oos-run")
    train = write_csv(folder / "train.csv", toy_rows())
    held = write_csv(folder / "heldout.csv", oos_rows())
    overrides = [*fast_settings(tiny_model), "data.oos_label=oos", "evaluate.plots=false"]
    status = run_cli("train", "--train", train, "--validation", held, "--eval", held,
                     "--output", folder / "run", *set_args(overrides))
    assert status == 0
    return folder / "run"


@pytest.fixture(autouse=True)
def _keep_threads():
    """Restore torch's thread count and the thread variables a test changed (the benchmark scripts
    set them in-process): later tests' numbers must not depend on which tests ran before them."""
    import torch

    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM")
    env = {name: os.environ.get(name) for name in names}
    threads = torch.get_num_threads()
    yield
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
