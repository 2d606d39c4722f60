"""Reading intent data from files and Hugging Face datasets.

Every format ends as an :class:`~intentbal.data.types.IntentData`. Anything a user can get wrong in a
file raises :class:`IntentbalError` naming the file, the line or row, what was expected and what
was found.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from intentbal.data.rasa import plain
from intentbal.data.types import IntentData
from intentbal.errors import IntentbalError

INTENT_FALLBACKS = ("label", "category")


DELIMITED = {".csv": ",", ".tsv": "\t"}


HF_DISK_MARKERS = ("dataset_dict.json", "state.json", "dataset_info.json")


SPLIT_ALIASES = {"eval": ("test", "validation", "val"), "validation": ("validation", "val")}


# The longest text read, in characters: Python's CSV field limit, so every format has the same one.
# An utterance is a sentence or two; anything longer is a document or a broken file, and a text is
# cut to model.max_length tokens anyway.
MAX_TEXT_CHARS = 131_072


# Leading bytes of files that are not text, whatever their name says.
SIGNATURES = {b"\x1f\x8b": ("a gzip-compressed file", "decompress it first (gunzip)"),
              b"PK\x03\x04": ("a zip archive or an Excel workbook", "extract it, or save the sheet as CSV"),
              b"BZh": ("a bzip2-compressed file", "decompress it first (bunzip2)"),
              b"\xfd7zXZ\x00": ("an xz-compressed file", "decompress it first (unxz)"),
              b"(\xb5/\xfd": ("a zstd-compressed file", "decompress it first (unzstd)"),
              b"PAR1": ("a Parquet file", "give it the .parquet suffix"),
              b"\xd0\xcf\x11\xe0": ("a legacy Excel or Office file", "save the sheet as CSV")}


def too_long(where: str, length: int) -> str:
    """The one line for a text over ``MAX_TEXT_CHARS``, the same for every format (``length`` -1:
    not known, as when the CSV reader stops at its field limit)."""
    found = "a longer one" if length < 0 else f"one of {length:,}"
    return (f"{where}: expected a text of at most {MAX_TEXT_CHARS:,} characters (an utterance), found {found}; "
            "shorten it or remove the row")


def load_intents(
    path: str | Path,
    *,
    text_column: str = "text",
    intent_column: str = "intent",
    split: str = "train",
    require_intent: bool = True,
) -> IntentData:
    """Load intent data from a file, a saved Hugging Face dataset folder, or a dataset name.

    Files: ``.csv``, ``.tsv``, ``.jsonl``, ``.json`` (CLINC-style ``{"train": [[text, intent],
    ...]}`` or a list of records), ``.parquet``, Rasa NLU ``.yml``/``.yaml`` and, for unlabelled
    data only, ``.txt`` (one text per line, no header). ``PATH#SPLIT`` picks a split
    of a JSON file or dataset (``PATH#test+oos_test`` joins two splits of a JSON file); otherwise
    ``split`` is used (``eval`` and ``validation`` also try their usual names). With
    ``require_intent=False`` a file without an intent column loads as unlabelled data
    (``labelled`` is False).
    """
    path, split = _split_suffix(str(path), split)
    columns = (text_column, intent_column, require_intent)
    if path.is_dir():
        if any((path / marker).exists() for marker in HF_DISK_MARKERS):
            return _from_hf(_load_from_disk(path), path, split, columns)
        raise IntentbalError(
            f"{path}: expected a data file or a dataset saved with save_to_disk, found a folder "
            "without dataset files; pass the file inside it"
        )
    suffix = path.suffix.lower()
    if not path.exists():
        if suffix or path.is_absolute() or str(path).startswith("."):
            raise IntentbalError(f"{path}: file not found; check the path")
        return _from_hf(_load_hub(str(path)), path, split, columns)
    if suffix in DELIMITED:
        return _load_delimited(path, DELIMITED[suffix], columns)
    if suffix == ".jsonl":
        return _load_jsonl(path, columns)
    if suffix == ".json":
        return _load_json(path, split, columns)
    if suffix == ".parquet":
        return _load_parquet(path, columns)
    if suffix in (".yml", ".yaml"):
        return _load_rasa(path)
    if suffix == ".txt":
        return _load_lines(path, require_intent)
    raise IntentbalError(
        f"{path}: expected a .csv, .tsv, .jsonl, .json, .parquet, Rasa .yml or (texts only) .txt file, "
        f"found {suffix or 'no extension'}"
    )


def _split_suffix(raw: str, split: str) -> tuple[Path, str]:
    path = Path(raw)
    if not path.exists() and "#" in raw:
        head, _, chosen = raw.rpartition("#")
        return Path(head), chosen
    return path, split


def read_text(path: Path, *, expected: str = "a header and rows of examples") -> str:
    data = path.read_bytes()
    for magic, (kind, fix) in SIGNATURES.items():
        if data.startswith(magic):
            raise IntentbalError(f"{path}: expected a text file ({expected}), found {kind}; {fix}")
    if not data.strip():
        raise IntentbalError(f"{path}: the file is empty; expected {expected}")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise IntentbalError(f"{path}:{line}: found a NUL byte; expected UTF-8 text, re-save as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IntentbalError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); re-save the file as UTF-8"
        ) from exc


Columns = tuple[str, str, bool]  # text column, intent column, whether the intent is required


def _pick_columns(found: list[str], columns: Columns, where: str) -> tuple[str, str | None]:
    text_column, intent_column, required = columns
    shown = ", ".join(repr(c) for c in found) or "none"
    if text_column not in found:
        raise IntentbalError(
            f"{where}: expected a text column {text_column!r}, found columns {shown}; "
            "name it with --set data.text_column=COLUMN"
        )
    if intent_column in found:
        return text_column, intent_column
    if intent_column == "intent":
        for fallback in INTENT_FALLBACKS:
            if fallback in found and fallback != text_column:
                return text_column, fallback
    if not required:
        return text_column, None
    raise IntentbalError(
        f"{where}: expected an intent column {intent_column!r}, found columns {shown}; "
        "name it with --set data.intent_column=COLUMN"
    )


def _example(text: Any, intent: Any, where: str, *, labelled: bool = True) -> tuple[str, str]:
    for role, value in (("text", text), ("intent", intent)):
        if isinstance(value, (list, dict)):  # str() would turn ['a', 'b'] into an intent called "['a', 'b']"
            kind = "list" if isinstance(value, list) else "object"
            raise IntentbalError(
                f"{where}: expected the {role} as a string, found a JSON {kind} "
                f"{json.dumps(value, ensure_ascii=False):.60}; give one {role} per row as a string"
            )
    text = "" if text is None else str(text).strip()
    intent = "" if intent is None else str(intent).strip()
    if not text:
        raise IntentbalError(f"{where}: expected a non-empty text, found an empty one; fill or remove the row")
    if len(text) > MAX_TEXT_CHARS:
        raise IntentbalError(too_long(where, len(text)))
    if labelled and not intent:
        raise IntentbalError(f"{where}: expected an intent, found an empty one; fill or remove the row")
    return text, intent


def _collect(pairs: list[tuple[str, str]], source: str, where: str, labelled: bool = True) -> IntentData:
    if not pairs:
        raise IntentbalError(f"{where}: expected examples, found none; add rows of text and intent")
    texts, intents = zip(*pairs)
    return IntentData(list(texts), list(intents), source, labelled)


def _load_delimited(path: Path, delimiter: str, columns: Columns) -> IntentData:
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter=delimiter, strict=True)
    pairs: list[tuple[str, str]] = []
    try:
        header = [h.strip() for h in next(reader)]
        _check_delimiter(path, header, delimiter, columns)
        _refuse_repeated(header, f"{path}:1")
        text_col, intent_col = _pick_columns(header, columns, str(path))
        ti = header.index(text_col)
        ii = header.index(intent_col) if intent_col else None
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not row:
                continue
            if len(row) != len(header):
                raise IntentbalError(
                    f"{where}: expected {len(header)} fields as in the header, found {len(row)}; "
                    "quote texts that contain the delimiter"
                )
            pairs.append(_example(row[ti], row[ii] if ii is not None else "", where, labelled=ii is not None))
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise IntentbalError(too_long(f"{path}:{reader.line_num}", -1)) from exc
        raise IntentbalError(
            f"{path}:{reader.line_num}: malformed {'TSV' if delimiter == chr(9) else 'CSV'} ({exc}); "
            "check the quotes on that line"
        ) from exc
    return _collect(pairs, str(path), f"{path}: header only", intent_col is not None)


def _refuse_repeated(names: Sequence[str], where: str) -> None:
    """A column named twice: which of the two holds the data is anyone's guess."""
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise IntentbalError(f"{where}: expected each column once, found {', '.join(map(repr, repeated))} "
                             f"{'twice' if len(repeated) == 1 else 'more than once'}; rename or remove the extra "
                             "column")


SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _check_delimiter(path: Path, header: list[str], delimiter: str, columns: Columns) -> None:
    """A header read as one column that holds the expected names joined by another separator is a
    file saved with that separator (Excel's semicolons), not a file missing its columns."""
    if len(header) != 1 or columns[0] in header:
        return
    for sep, name in SEPARATORS.items():
        parts = [h.strip() for h in header[0].split(sep)]
        if sep != delimiter and columns[0] in parts:
            expected = SEPARATORS[delimiter]
            fix = ("rename it to .tsv" if sep == "\t" and delimiter == ","
                   else f"re-save it with {expected}s" + (" or rename it to .csv" if sep == "," else ""))
            raise IntentbalError(
                f"{path}:1: expected {expected}-separated columns, found the header {header[0]!r}, which looks "
                f"{name}-separated; intentbal reads {expected}-separated {path.suffix.lower()[1:].upper()}: {fix}"
            )


def _load_lines(path: Path, require_intent: bool) -> IntentData:
    """One text per line, blank lines skipped: unlabelled utterances such as a chat log export."""
    if require_intent:
        raise IntentbalError(
            f"{path}: expected labelled data, found a .txt file, which holds texts only; "
            "give texts and intents as .csv, .jsonl, .json, .parquet or Rasa .yml"
        )
    lines = read_text(path, expected="one text per line").splitlines()
    pairs = [_example(line, "", f"{path}:{n}", labelled=False) for n, line in enumerate(lines, start=1) if line.strip()]
    return _collect(pairs, str(path), str(path), labelled=False)


def _load_jsonl(path: Path, columns: Columns) -> IntentData:
    pairs: list[tuple[str, str]] = []
    labelled = True
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            record = json.loads(line, object_pairs_hook=partial(_unique_keys, where=where))
        except json.JSONDecodeError as exc:
            raise IntentbalError(f"{where}: malformed JSON ({exc.msg}); expected one object per line") from exc
        if not isinstance(record, dict):
            raise IntentbalError(f"{where}: expected a JSON object, found {type(record).__name__}")
        text_col, intent_col = _pick_columns(list(record), columns, where)
        labelled = labelled and intent_col is not None
        intent = record[intent_col] if intent_col else ""
        pairs.append(_example(record[text_col], intent, where, labelled=labelled))
    return _collect(pairs, str(path), str(path), labelled)


def _unique_keys(pairs: list[tuple[str, Any]], where: str) -> dict[str, Any]:
    _refuse_repeated([k for k, _ in pairs], where)
    return dict(pairs)


def _load_json(path: Path, split: str, columns: Columns) -> IntentData:
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise IntentbalError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg}); fix the file") from exc
    if isinstance(doc, dict):
        keys = [_choose_split(list(doc), part, str(path)) for part in split.split("+")]
        if any(not isinstance(doc[k], list) for k in keys):
            raise IntentbalError(f"{path}[{'+'.join(keys)}]: expected lists of examples, found something else")
        records, where = [r for k in keys for r in doc[k]], f"{path}[{'+'.join(keys)}]"
    else:
        records, where = doc, str(path)
    if not isinstance(records, list):
        raise IntentbalError(f"{where}: expected a list of examples, found {type(records).__name__}")
    pairs = []
    for n, rec in enumerate(records):
        at = f"{where} item {n}"
        if isinstance(rec, list) and len(rec) == 2:
            pairs.append(_example(rec[0], rec[1], at))
        elif isinstance(rec, dict):
            text_col, intent_col = _pick_columns(list(rec), (*columns[:2], True), at)
            pairs.append(_example(rec[text_col], rec[intent_col], at))
        else:
            raise IntentbalError(f"{at}: expected [text, intent] or an object, found {rec!r:.60}")
    return _collect(pairs, str(path), where)


def _choose_split(available: list[str], split: str, where: str) -> str:
    for name in (split, *SPLIT_ALIASES.get(split, ())):
        if name in available:
            return name
    raise IntentbalError(
        f"{where}: expected a split {split!r}, found {', '.join(map(repr, available)) or 'none'}; "
        "pick one with PATH#SPLIT"
    )


def _load_rasa(path: Path) -> IntentData:
    import yaml

    text = read_text(path)
    try:
        doc = yaml.safe_load(text)
        nodes = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise IntentbalError(f"{path}{yaml_error(exc)}; fix the YAML there") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("nlu"), list):
        raise IntentbalError(f"{path}: expected Rasa NLU YAML with a top-level 'nlu:' list, found none")
    lines_of = _item_lines(nodes)
    pairs: list[tuple[str, str]] = []
    for n, item in enumerate(doc["nlu"]):
        if not isinstance(item, dict) or "intent" not in item:
            continue
        where = f"{path}:{lines_of[n]}" if n < len(lines_of) else str(path)
        intent = item["intent"]
        if not isinstance(intent, (str, int, float)) or not str(intent).strip():
            found = "an empty one" if intent is None or not str(intent).strip() else f"a {type(intent).__name__}"
            raise IntentbalError(
                f"{where}: expected an intent name after 'intent:', found {found}; write '- intent: NAME'"
            )
        intent = str(intent).strip()
        examples = [e for e in _rasa_examples(item.get("examples"), where, intent) if e]
        if not examples:
            raise IntentbalError(
                f"{where}: intent {intent!r} has no examples; expected 'examples: |' with '- text' lines"
            )
        pairs.extend(_example(e, intent, f"{where} intent {intent!r}") for e in examples)
    return _collect(pairs, str(path), f"{path}: nlu")


def yaml_error(exc: Exception) -> str:
    """``:LINE:COLUMN: YAML syntax error (PROBLEM)`` for a PyYAML error, to follow a file name."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    return f"{where}: YAML syntax error ({problem})"


def _item_lines(root: Any) -> list[int]:
    """The 1-based line of each item of the top-level ``nlu:`` list, from PyYAML's node tree."""
    import yaml

    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "nlu" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _rasa_examples(examples: Any, path: str, intent: str) -> list[str]:
    """The texts of one intent's ``examples``: a block of ``- text`` lines, or Rasa's per-example
    form, a list of ``- text: ...`` items (their ``metadata:`` is not needed to train)."""
    if isinstance(examples, list):
        texts = []
        for n, example in enumerate(examples):
            if not isinstance(example, dict) or not isinstance(example.get("text"), str):
                raise IntentbalError(
                    f"{path}: intent {intent!r} example {n}: expected '- text: ...' (with optional 'metadata:'), "
                    f"found {example!r:.60}; write each example as a 'text:' item"
                )
            texts.append(example["text"])
    else:
        lines = [ln.strip() for ln in str(examples or "").splitlines()]
        texts = [ln[1:] for ln in lines if ln.startswith("-")]
    return [plain(t.strip()) for t in texts]


def _load_parquet(path: Path, columns: Columns) -> IntentData:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise IntentbalError(f"{path}: not a readable Parquet file ({reason}); re-save it as Parquet") from exc
    text_col, intent_col = _pick_columns(list(table.column_names), columns, str(path))
    texts = table.column(text_col).to_pylist()
    intents = table.column(intent_col).to_pylist() if intent_col else [""] * len(texts)
    pairs = [_example(t, y, f"{path} row {n}", labelled=intent_col is not None)
             for n, (t, y) in enumerate(zip(texts, intents))]
    return _collect(pairs, str(path), f"{path}: no rows", intent_col is not None)


def _load_from_disk(path: Path) -> Any:
    import datasets

    try:
        return datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many types for a damaged folder
        raise IntentbalError(f"{path}: not a readable saved dataset ({exc}); re-save it") from exc


def _load_hub(name: str) -> Any:
    import datasets

    try:
        return datasets.load_dataset(name)
    except Exception as exc:  # offline, unknown name, or a broken dataset script
        raise IntentbalError(
            f"{name}: not a local file, and not loadable as a Hugging Face dataset "
            f"({type(exc).__name__}); check the path or name"
        ) from exc


def _from_hf(ds: Any, path: Path, split: str, columns: Columns) -> IntentData:
    if hasattr(ds, "keys"):
        chosen = _choose_split(list(ds.keys()), split, str(path))
        ds, where = ds[chosen], f"{path}[{chosen}]"
    else:
        where = str(path)
    text_col, intent_col = _pick_columns(list(ds.column_names), (*columns[:2], True), where)
    feature = ds.features[intent_col]
    names = getattr(feature, "names", None)
    intents = [names[i] if names else i for i in ds[intent_col]]
    pairs = [_example(t, y, f"{where} row {n}") for n, (t, y) in enumerate(zip(ds[text_col], intents))]
    return _collect(pairs, str(path), where)
