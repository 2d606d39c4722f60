import json
from collections import Counter

import pytest

from intentbal.data.readers import load_intents
from intentbal.data.splits import stratified_split
from intentbal.data.types import IntentData
from intentbal.errors import IntentbalError

from conftest import write_csv

ROWS = [("hi there", "greet"), ("bye now", "leave"), ("hello, friend", "greet")]


def expect_error(path, *fragments, **kwargs):
    with pytest.raises(IntentbalError) as info:
        load_intents(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- formats -----------------------------------------------------------------------------

def test_csv_with_quotes_and_commas(tmp_path):
    data = load_intents(write_csv(tmp_path / "d.csv", ROWS))
    assert data.texts == ["hi there", "bye now", "hello, friend"]
    assert data.intents == ["greet", "leave", "greet"]


def test_tsv(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("text\tintent\nhi there\tgreet\nbye now\tleave\n", encoding="utf-8")
    assert load_intents(path).intents == ["greet", "leave"]


def test_jsonl(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "intent": i}) for t, i in ROWS) + "\n\n")
    assert load_intents(path).texts == [t for t, _ in ROWS]


def test_clinc_json_splits(tmp_path):
    path = tmp_path / "clinc.json"
    path.write_text(json.dumps({"train": [["hi", "greet"], ["bye", "leave"]],
                                "val": [["hey", "greet"]], "test": [["ciao", "leave"]]}))
    assert load_intents(path).texts == ["hi", "bye"]
    assert load_intents(path, split="eval").texts == ["ciao"]
    assert load_intents(path, split="validation").texts == ["hey"]
    assert load_intents(f"{path}#val").texts == ["hey"]
    expect_error(f"{path}#nope", "expected a split 'nope'", "'train'")


def test_json_list_of_records(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"text": t, "label": i} for t, i in ROWS]))
    assert load_intents(path).intents == ["greet", "leave", "greet"]


def test_rasa_yaml_strips_entity_markup(tmp_path):
    path = tmp_path / "nlu.yml"
    path.write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hey\n    - hello [Anna](name)\n'
        "- intent: book\n  examples: |\n    - a table in [Berlin]{\"entity\": \"city\"}\n"
        "- synonym: nyc\n  examples: |\n    - new york\n"
    )
    data = load_intents(path)
    assert data.texts == ["hey", "hello Anna", "a table in Berlin"]
    assert data.intents == ["greet", "greet", "book"]


def test_hf_dataset_saved_to_disk_with_classlabel(tmp_path):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["greet", "leave"])})
    ds = datasets.Dataset.from_dict({"text": ["hi", "bye"], "label": [0, 1]}, features=features)
    datasets.DatasetDict({"train": ds, "test": ds.select([1])}).save_to_disk(tmp_path / "dd")
    assert load_intents(tmp_path / "dd").intents == ["greet", "leave"]
    assert load_intents(tmp_path / "dd", split="eval").intents == ["leave"]
    ds.save_to_disk(tmp_path / "single")
    assert load_intents(tmp_path / "single").texts == ["hi", "bye"]


def test_unknown_name_offline_is_a_clear_error():
    expect_error("no-such-user/no-such-dataset", "not loadable as a Hugging Face dataset")


# --- columns -------------------------------------------------------------------------------

def test_category_column_is_recognised(tmp_path):
    path = write_csv(tmp_path / "b.csv", ROWS, header=("text", "category"))
    assert load_intents(path).intents[0] == "greet"
    assert load_intents(path, intent_column="category").intents[0] == "greet"


def test_custom_columns(tmp_path):
    path = write_csv(tmp_path / "c.csv", ROWS, header=("utterance", "goal"))
    data = load_intents(path, text_column="utterance", intent_column="goal")
    assert data.intents == ["greet", "leave", "greet"]


def test_missing_columns_name_the_fix(tmp_path):
    path = write_csv(tmp_path / "c.csv", ROWS, header=("utterance", "goal"))
    expect_error(path, "c.csv", "expected a text column 'text'", "'utterance'", "data.text_column")
    expect_error(path, "expected an intent column 'intent'", "data.intent_column", text_column="utterance")


def test_unlabelled_file_when_intent_not_required(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text\nhello\nbye\n")
    data = load_intents(path, require_intent=False)
    assert data.texts == ["hello", "bye"] and not data.labelled


def test_txt_holds_unlabelled_texts_one_per_line(tmp_path):
    path = tmp_path / "logs.txt"
    path.write_bytes("\ufeffhello, there\r\n\n  bye  \n".encode("utf-8"))
    data = load_intents(path, require_intent=False)
    assert data.texts == ["hello, there", "bye"] and not data.labelled
    expect_error(path, "logs.txt", "expected labelled data", "texts only")
    (tmp_path / "blank.txt").write_text("\n  \n")
    expect_error(tmp_path / "blank.txt", "empty", "one text per line", require_intent=False)


# --- bad input -------------------------------------------------------------------------------

def test_missing_file_and_folder(tmp_path):
    expect_error(tmp_path / "nope.csv", "nope.csv", "file not found")
    expect_error(tmp_path, "found a folder")


def test_empty_and_header_only(tmp_path):
    (tmp_path / "e.csv").write_text("")
    expect_error(tmp_path / "e.csv", "empty")
    (tmp_path / "h.csv").write_text("text,intent\n")
    expect_error(tmp_path / "h.csv", "header only", "found none")


def test_empty_text_and_intent_name_the_line(tmp_path):
    (tmp_path / "e.csv").write_text("text,intent\nhi,greet\n   ,greet\n")
    expect_error(tmp_path / "e.csv", "e.csv:3", "non-empty text")
    (tmp_path / "i.csv").write_text("text,intent\nhi,\n")
    expect_error(tmp_path / "i.csv", "i.csv:2", "expected an intent")


def test_wrong_field_count_and_unterminated_quote(tmp_path):
    (tmp_path / "f.csv").write_text("text,intent\nhi,greet,extra\n")
    expect_error(tmp_path / "f.csv", "f.csv:2", "expected 2 fields", "found 3")
    (tmp_path / "q.csv").write_text('text,intent\nhi,greet\n"never closed,greet\n')
    expect_error(tmp_path / "q.csv", "q.csv", "malformed CSV")


def test_encodings(tmp_path):
    (tmp_path / "latin.csv").write_bytes("text,intent\ncaf\xe9,order\n".encode("latin-1"))
    expect_error(tmp_path / "latin.csv", "latin.csv:2", "not valid UTF-8", "UTF-8")
    (tmp_path / "nul.csv").write_bytes(b"text,intent\nhi\x00,greet\n")
    expect_error(tmp_path / "nul.csv", "NUL")
    (tmp_path / "bom.csv").write_bytes("\ufefftext,intent\r\nhi,greet\r\nbye,leave\r\n".encode("utf-8"))
    assert load_intents(tmp_path / "bom.csv").texts == ["hi", "bye"]


def test_malformed_json_jsonl_yaml(tmp_path):
    (tmp_path / "a.json").write_text('{"train": [["hi", "greet"],')
    expect_error(tmp_path / "a.json", "malformed JSON")
    (tmp_path / "b.jsonl").write_text('{"text": "hi", "intent": "greet"}\n{oops\n')
    expect_error(tmp_path / "b.jsonl", "b.jsonl:2", "malformed JSON")
    (tmp_path / "c.yml").write_text("nlu:\n- intent: greet\n  examples: |\n    - hi\n  - : [\n")
    expect_error(tmp_path / "c.yml", "c.yml:5:3: YAML syntax error")
    (tmp_path / "d.yml").write_text("nlu:\n- intent: greet\n  examples: |\n    - hi\n- intent: empty\n")
    expect_error(tmp_path / "d.yml", "'empty' has no examples")


def test_unknown_extension(tmp_path):
    (tmp_path / "d.xlsx").write_text("x")
    expect_error(tmp_path / "d.xlsx", "expected a .csv", ".xlsx")


def test_unicode_texts_load_intact(tmp_path):
    rows = [("مرحبا، أين طلبي؟", "track"), ("where is it 📦", "track"), ("שלום", "greet")]
    assert load_intents(write_csv(tmp_path / "u.csv", rows)).texts == [r[0] for r in rows]


# --- split ----------------------------------------------------------------------------------

def test_stratified_split_keeps_singletons_in_train():
    intents = ["a"] * 10 + ["b"] * 5 + ["c"] * 2 + ["d"]
    data = IntentData([f"t{i}" for i in range(len(intents))], intents, "mem")
    train, held, not_evaluable = stratified_split(data, fraction=0.2, seed=0)
    assert Counter(held.intents) == {"a": 2, "b": 1, "c": 1}
    assert Counter(train.intents) == {"a": 8, "b": 4, "c": 1, "d": 1}
    assert not_evaluable == ["d"]
    assert not set(train.texts) & set(held.texts)
    again = stratified_split(data, fraction=0.2, seed=0)
    assert again[1].texts == held.texts
    assert stratified_split(data, fraction=0.2, seed=1)[1].texts != held.texts
