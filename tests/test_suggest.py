"""`intentbal suggest`: the ranking on hand-made probabilities, and the command on the tiny model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from intentbal.data.overlap import text_hashes
from intentbal.errors import IntentbalError
from intentbal.evaluation import suggestions as suggest
from intentbal.evaluation.suggestions import (
    LIKELY,
    NEAR_MISS,
    REPORT_REASONS,
    asked,
    from_counts,
    from_report,
    new_texts,
    rank_candidates,
    top_two,
)

from conftest import TOY, one_line_error, read_csv, run_cli, set_args

INTENTS = ["a", "b", "c"]
PROBS = np.array([
    [0.70, 0.20, 0.10],  # 0: a, far ahead
    [0.50, 0.40, 0.10],  # 1: a, b close behind
    [0.10, 0.80, 0.10],  # 2: b
    [0.45, 0.10, 0.45],  # 3: a and c tied: a, the earlier column, is the top
    [0.20, 0.35, 0.45],  # 4: c, b close behind
])


def picked(suggestions, intent, kind):
    return [(s.index, s.rank) for s in suggestions if s.intent == intent and s.kind == kind]


def test_likely_rows_are_the_intents_own_and_near_misses_come_second_within_the_margin():
    found = rank_candidates(PROBS, INTENTS, ["b", "a"], margin=0.15)
    assert [s.intent for s in found] == ["b", "b", "b", "a", "a", "a"]  # the order asked, likely first
    assert picked(found, "b", LIKELY) == [(2, 1)]
    assert picked(found, "b", NEAR_MISS) == [(1, 1), (4, 2)]  # by b's probability: 0.40, then 0.35
    assert picked(found, "a", LIKELY) == [(0, 1), (1, 2), (3, 3)]
    assert picked(found, "a", NEAR_MISS) == []
    near = [s for s in found if s.kind == NEAR_MISS]
    assert [s.predicted for s in near] == ["a", "c"] and [s.probability for s in near] == [0.40, 0.35]


def test_margin_decides_what_counts_as_a_near_miss():
    assert picked(rank_candidates(PROBS, INTENTS, ["b"], margin=0.05), "b", NEAR_MISS) == []
    assert picked(rank_candidates(PROBS, INTENTS, ["c"], margin=0.0), "c", NEAR_MISS) == [(3, 1)]  # the tie only
    assert picked(rank_candidates(PROBS, INTENTS, ["c"], margin=1.0), "c", NEAR_MISS) == [(3, 1)]  # nowhere else second


def test_per_intent_caps_each_kind_keeping_the_most_likely():
    found = rank_candidates(PROBS, INTENTS, ["a", "b"], per_intent=1, margin=0.15)
    assert picked(found, "a", LIKELY) == [(0, 1)]
    assert picked(found, "b", NEAR_MISS) == [(1, 1)]
    with pytest.raises(ValueError):
        rank_candidates(PROBS, INTENTS, ["a"], per_intent=0)


def test_top_two_in_chunks_matches_a_full_sort(monkeypatch):
    probs = np.random.default_rng(0).random((11, 6)).astype(np.float32)
    monkeypatch.setattr(suggest, "CHUNK", 4)
    top, second = top_two(probs)
    order = np.argsort(-probs, axis=1)
    assert top.tolist() == order[:, 0].tolist() and second.tolist() == order[:, 1].tolist()


def test_pool_drops_repeats_and_training_texts_once_normalised():
    texts = ["Where is my card?", "where is my card", "Refund me, please!", "new question", "new question"]
    pool = new_texts(texts, train_hashes=text_hashes(["refund me please"]))
    assert pool.texts == ["Where is my card?", "new question"]
    assert (pool.duplicates, pool.in_training) == (2, 1)
    assert new_texts(texts).texts == ["Where is my card?", "Refund me, please!", "new question"]


def test_a_report_selects_failing_at_risk_and_thinly_evidenced_intents_the_model_knows():
    statuses = {"a": "pass", "b": "at_risk", "c": "fail", "d": "insufficient_evidence", "e": "not_evaluable",
                "new": "fail"}
    report = {"intents": [{"intent": i, "status": s} for i, s in statuses.items()]}
    chosen = from_report(report, ["a", "b", "c", "d", "e"], source="r.json")
    assert chosen.reasons == {"b": "at_risk", "c": "fail", "d": "insufficient_evidence", "e": "not_evaluable"}
    assert chosen.unknown == ["new"] and chosen.source == "r.json"
    with pytest.raises(IntentbalError, match="found none of them"):
        from_report(report, ["x", "y"], source="r.json")


def test_training_counts_select_the_rare_intents_rarest_first():
    chosen = from_counts({"a": 9, "b": 50, "c": 2, "d": 10}, ["a", "b", "c", "d"], rare_max=10, source="meta")
    assert chosen.reasons == {"c": "rare", "a": "rare", "d": "rare"}


def test_asked_intents_must_be_the_models_with_a_suggestion():
    assert asked(["b"], INTENTS, model="m").reasons == {"b": "asked"}
    with pytest.raises(IntentbalError, match=r"'refnd' \(did you mean 'refund'\?\)"):
        asked(["refnd"], ["refund", "fraud"], model="m")


# --- the command on the tiny model ---------------------------------------------------------

POOL = ["where has my parcel got to", "Where has my parcel got to?", "please give my money back",
        "my password does not work", "someone used my stolen card", "reset my password",  # a training text
        "what a lovely day"]


@pytest.fixture
def pool_txt(tmp_path):
    path = tmp_path / "logs.txt"
    path.write_text("\n".join(POOL) + "\n\n")
    return path


def test_suggest_writes_rows_to_confirm_for_the_intents_the_report_flags(trained_run, pool_txt, tmp_path, capsys):
    out = tmp_path / "to_label.csv"
    assert run_cli("suggest", "--model", trained_run / "model", "--unlabeled", pool_txt, "--output", out) == 0
    report = json.loads((trained_run / "report.json").read_text())
    flagged = {r["intent"]: r["status"] for r in report["intents"]
               if r["status"] in REPORT_REASONS and r["intent"] in TOY}
    assert set(flagged) == set(TOY)  # the toy eval data has fewer than evaluate.min_support rows of each
    rows = read_csv(out)
    assert list(rows[0]) == suggest.COLUMNS
    assert {r["suggested_intent"] for r in rows} <= set(flagged)
    assert all(r["reason"] == flagged[r["suggested_intent"]] for r in rows)
    assert all(r["kind"] in (LIKELY, NEAR_MISS) and r["confirmed_intent"] == "" for r in rows)
    assert "reset my password" not in {r["text"] for r in rows}
    assert "Where has my parcel got to?" not in {r["text"] for r in rows}  # a repeat of the row before it
    likely = [r for r in rows if r["kind"] == LIKELY]
    assert sorted(r["text"] for r in likely) == sorted(set(POOL) - {POOL[1], POOL[5]})  # each new text once
    assert all(r["predicted"] == r["suggested_intent"] for r in likely)
    said = capsys.readouterr().out
    assert f"selected by {trained_run / 'report.json'}" in said and "5 new texts of 7 rows" in said
    assert f"wrote {len(rows)} rows to {out}" in said


def test_confirmed_rows_merge_back_into_training_as_the_readme_says(trained_run, pool_txt, tmp_path):
    import pandas as pd

    from intentbal.data.readers import load_intents

    out = tmp_path / "to_label.csv"
    assert run_cli("suggest", "--model", trained_run / "model", "--unlabeled", pool_txt, "--output", out,
                   "--intents", "refund,fraud") == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert set(table.suggested_intent) == {"refund", "fraud"} and set(table.reason) == {"asked"}
    table.loc[table.text == "please give my money back", "confirmed_intent"] = "refund"
    table.to_csv(out, index=False)
    (tmp_path / "train.csv").write_text("text,intent\nrefund this purchase,refund\n")
    # the README's recipe
    done = pd.read_csv(out, keep_default_na=False).query("confirmed_intent != ''")
    new = done[["text", "confirmed_intent"]].rename(columns={"confirmed_intent": "intent"}).drop_duplicates("text")
    pd.concat([pd.read_csv(tmp_path / "train.csv"), new]).to_csv(tmp_path / "train_v2.csv", index=False)
    merged = load_intents(tmp_path / "train_v2.csv")
    assert list(zip(merged.texts, merged.intents)) == [("refund this purchase", "refund"),
                                                       ("please give my money back", "refund")]


def test_without_a_report_the_rare_training_intents_are_chosen(trained_run, pool_txt, tmp_path, capsys):
    model = tmp_path / "copy" / "model"
    shutil.copytree(trained_run / "model", model)
    out = tmp_path / "s.parquet"
    assert run_cli("suggest", "--model", model, "--unlabeled", pool_txt, "--output", out, "--per-intent", "1",
                   *set_args(["profile.rare_max=4"])) == 0
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert str(table.schema.field("rank").type) == "int64"
    rows = table.to_pylist()
    assert {r["suggested_intent"] for r in rows} <= {"password", "fraud"} and {r["reason"] for r in rows} == {"rare"}
    assert max(r["rank"] for r in rows) == 1
    assert "selected by the training counts in" in capsys.readouterr().out


def test_no_intent_flagged_writes_an_empty_table(trained_run, pool_txt, tmp_path, capsys):
    report = tmp_path / "report.json"
    doc = json.loads((trained_run / "report.json").read_text())
    doc["intents"] = [{**r, "status": "pass"} for r in doc["intents"]]
    report.write_text(json.dumps(doc))
    out = tmp_path / "s.jsonl"
    assert run_cli("suggest", "--model", trained_run / "model", "--unlabeled", pool_txt, "--output", out,
                   "--report", report) == 0
    assert out.read_text() == ""
    assert "0 intent(s) selected" in capsys.readouterr().out


@pytest.mark.parametrize(("case", "fragments"), [
    ("header only", ("expected examples, found none",)),
    ("training texts only", ("expected texts the model was not trained on", "1 training text")),
    ("unknown intent", ("--intents", "'refnd' (did you mean 'refund'?)")),
    ("no report, no counts", ("expected a report to choose intents by", "--report PATH or --intents")),
])
def test_errors_are_one_line_and_write_nothing(case, fragments, trained_run, tmp_path, capsys):
    model, pool, extra = trained_run / "model", tmp_path / "pool.csv", []
    pool.write_text("text\nwhere has my parcel got to\n")
    if case == "header only":
        pool.write_text("text\n")
    elif case == "training texts only":
        pool.write_text("text\nReset my password!\n")
    elif case == "unknown intent":
        extra = ["--intents", "refund,refnd"]
    else:
        model = tmp_path / "foreign" / "model"
        shutil.copytree(trained_run / "model", model)
        (model / "intentbal.json").unlink()
    out = tmp_path / "s.csv"
    assert run_cli("suggest", "--model", model, "--unlabeled", pool, "--output", out, *extra) == 2
    if case == "no report, no counts":  # a model folder that lost its intentbal.json says so first
        lines = capsys.readouterr().err.splitlines()
        warning, error = lines[0], lines[-1]  # between them, progress lines
        assert warning.startswith("intentbal: warning: ") and "no intentbal.json" in warning
        assert error.startswith("intentbal: error: ") and all(f in error for f in fragments)
    else:
        one_line_error(capsys, *fragments)
    assert not out.exists()


@pytest.mark.parametrize(("args", "fragment"), [
    (["--report", "r.json", "--intents", "refund"], "not allowed with argument"),
    (["--intents", " , "], "expected intent names separated by commas"),
    (["--margin", "2"], "expected a number between 0 and 1"),
])
def test_argument_errors_are_one_line(args, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        run_cli("suggest", "--model", "m", "--unlabeled", "u.txt", "--output", "s.csv", *args)
    assert info.value.code == 2
    one_line_error(capsys, fragment)
