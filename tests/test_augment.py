import os
import subprocess
import sys
from collections import Counter

import pytest

from intentbal.commands.augment import augment_file
from intentbal.config import load_config
from intentbal.data.inputs import load_split
from intentbal.data.readers import load_intents
from intentbal.data.types import IntentData
from intentbal.rebalance.augmentation import DUPLICATE, augment_rare, clean_text, resolve_target

from conftest import ROOT, run_cli, toy_data

ALL = ["keyboard", "ocr", "char_substitute", "word_swap", "word_delete", "spelling"]


def test_rare_intents_reach_the_target_and_others_are_untouched():
    data = toy_data()
    result = augment_rare(data, target=7, augmenters=ALL, seed=0)
    before, after = Counter(data.intents), result.counts()
    for intent, n in before.items():
        assert after[intent] == max(n, 7)
    assert len(result.synthetic) == sum(max(0, 7 - n) for n in before.values())
    assert result.data.texts[: len(data)] == data.texts, "original rows come first, unchanged"


def test_synthetic_rows_are_new_and_keep_provenance():
    data = toy_data()
    result = augment_rare(data, target=12, augmenters=ALL, seed=3)
    originals = {t.casefold() for t in data.texts}
    made = [s for s in result.synthetic if s.augmenter != DUPLICATE]
    assert made, "the augmenters produced something"
    seen = set()
    for s in made:
        assert s.augmenter in ALL
        assert s.source_text in data.texts
        assert data.intents[data.texts.index(s.source_text)] == s.intent
        assert s.text.casefold() not in originals and s.text != s.source_text
        assert s.text.casefold() not in seen
        seen.add(s.text.casefold())


def test_duplication_is_the_fallback():
    data = IntentData(["a", "b", "c", "d"], ["x", "y", "y", "y"], "m")
    result = augment_rare(data, target=3, augmenters=["word_swap"], seed=0)  # one word: swap is a no-op
    assert [(s.text, s.augmenter) for s in result.synthetic] == [("a", DUPLICATE), ("a", DUPLICATE)]


def test_same_seed_same_output_other_seed_differs():
    a = augment_rare(toy_data(), target=10, augmenters=ALL, seed=1).synthetic
    b = augment_rare(toy_data(), target=10, augmenters=ALL, seed=1).synthetic
    c = augment_rare(toy_data(), target=10, augmenters=ALL, seed=2).synthetic
    assert a == b and a != c


@pytest.mark.slow  # two processes, each importing nlpaug
def test_deterministic_across_processes_and_hash_seeds(tmp_path, toy_csv):
    outputs = []
    for hash_seed in ("1", "2", "random"):
        out = tmp_path / f"aug-{hash_seed}.csv"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-m", "intentbal.cli", "augment", str(toy_csv), "--output", str(out),
             "--set", "augment.target_count=10", "--set", "augment.augmenters=[spelling, keyboard, word_swap]"],
            check=True, env=env, capture_output=True, cwd=ROOT,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_clean_text_undoes_tokeniser_artefacts():
    assert clean_text("it hasn ' t arrived , why ?") == "it hasn't arrived, why?"
    assert clean_text("i ' m  here ( really )") == "i'm here (really)"


def test_target_absolute_or_fraction_of_median():
    counts = {"a": 2, "b": 10, "c": 30}
    assert resolve_target(counts, target_count=7, target_fraction=0.5) == 7
    assert resolve_target(counts, target_count=None, target_fraction=0.5) == 5


def test_augment_file_writes_provenance(tmp_path, toy_csv):
    config = load_config(overrides=[f"data.train={toy_csv}", "augment.target_count=6"])
    result = augment_file(config, output=tmp_path / "out.csv")
    loaded = load_intents(tmp_path / "out.csv")
    assert Counter(loaded.intents) == result.counts()
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header == "text,intent,source_text,augmenter"


def test_augmentation_never_sees_held_out_data(toy_csv):
    from intentbal.rebalance.augmentation import synthetic_rows
    from intentbal.rebalance.transforms import apply
    from intentbal.training.recipe import row_transforms

    config = load_config(overrides=[f"data.train={toy_csv}", "augment.enabled=true", "augment.target_count=9"])
    split = load_split(config)
    rows = apply(row_transforms(config), split.train)
    held_out = set(split.eval.texts)
    assert held_out, "a split was held out"
    assert synthetic_rows(rows) and all(s.source_text not in held_out for s in synthetic_rows(rows))
    assert not held_out & set(rows.texts)


def test_synonym_needs_wordnet_data():
    from intentbal.rebalance.augmentation import _wordnet_present

    result = augment_rare(toy_data(), target=5, augmenters=["synonym", "ocr"], seed=0)
    if _wordnet_present():
        assert result.warnings == []
    else:
        assert any("'synonym' skipped" in w for w in result.warnings)
        assert {s.augmenter for s in result.synthetic} <= {"ocr", DUPLICATE}


def test_cap_intents_undersamples_only_frequent_intents_reproducibly():
    from intentbal.data.types import IntentData
    from intentbal.rebalance.capping import cap_intents

    data = IntentData([f"a{i}" for i in range(10)] + ["b0", "b1"], ["a"] * 10 + ["b"] * 2, "x")
    capped = cap_intents(data, max_count=4, seed=1)
    assert capped.intents.count("a") == 4 and capped.intents.count("b") == 2
    assert set(capped.texts) <= set(data.texts)
    assert capped.texts == sorted(capped.texts, key=data.texts.index)  # order kept
    assert cap_intents(data, max_count=4, seed=1).texts == capped.texts
    assert cap_intents(data, max_count=4, seed=3).texts != capped.texts  # the seed matters


def test_duplicate_augmenter_is_plain_random_oversampling(toy_csv):
    from intentbal.config import Config
    from intentbal.data.inputs import load_data
    from intentbal.rebalance.augmentation import augment_rare

    data = load_data(Config(), toy_csv, "train")
    result = augment_rare(data, target=8, augmenters=["duplicate"], seed=0)
    assert result.synthetic and all(s.text == s.source_text and s.augmenter == "duplicate" for s in result.synthetic)
    assert set(result.counts().values()) == {8}


def test_protect_words_reports_each_augmented_intents_words():
    from intentbal.data.keywords import discriminative_words

    data = toy_data()  # fraud 3, password 4, refund 6, track_order 8 rows
    result = augment_rare(data, target=5, augmenters=ALL, seed=0, protect_words=2)
    ranked = discriminative_words(data.texts, data.intents, top_k=2)
    assert result.protected == {"fraud": ranked["fraud"], "password": ranked["password"]}
    assert "password" in result.protected["password"]
    assert augment_rare(data, target=5, augmenters=ALL, seed=0).protected == {}


@pytest.mark.parametrize("augmenter", ALL)
def test_protected_words_survive_every_augmenter(augmenter):
    from intentbal.data.keywords import words_in

    results = [augment_rare(toy_data(), target=12, augmenters=[augmenter], seed=seed, protect_words=2)
               for seed in range(6)]
    rows = [(s, r.protected[s.intent]) for r in results for s in r.synthetic if s.augmenter == augmenter]
    assert len(rows) > 20, "the augmenter still changes the rows"
    for s, words in rows:
        before, after = Counter(words_in(s.source_text)), Counter(words_in(s.text))
        assert all(after[w] >= before[w] for w in words), (s, words)


@pytest.mark.parametrize("augmenter", sorted(set(ALL) - {"word_swap"}))  # a swap moves words, never alters them
def test_without_protection_the_augmenters_break_those_words(augmenter):
    from intentbal.data.keywords import discriminative_words, words_in

    words = discriminative_words(toy_data().texts, toy_data().intents, top_k=2)
    broken = [
        s for seed in range(6)
        for s in augment_rare(toy_data(), target=12, augmenters=[augmenter], seed=seed).synthetic
        if any(Counter(words_in(s.text))[w] < Counter(words_in(s.source_text))[w] for w in words[s.intent])
    ]
    assert broken, "the protection test above could not fail"


def test_protection_is_deterministic_and_changes_only_where_words_are_protected():
    a = augment_rare(toy_data(), target=10, augmenters=ALL, seed=4, protect_words=3)
    b = augment_rare(toy_data(), target=10, augmenters=ALL, seed=4, protect_words=3)
    assert a.synthetic == b.synthetic and a.protected == b.protected
    assert a.synthetic != augment_rare(toy_data(), target=10, augmenters=ALL, seed=4).synthetic


def test_augment_command_prints_the_protected_words(toy_csv, tmp_path, capsys):
    from intentbal.data.keywords import discriminative_words

    assert run_cli("augment", toy_csv, "--output", tmp_path / "out.csv", "--set", "augment.target_count=5",
                   "--set", "augment.protect_words=2") == 0
    ranked = discriminative_words(toy_data().texts, toy_data().intents, top_k=2)
    out = capsys.readouterr().out
    assert f"  fraud: {', '.join(ranked['fraud'])}\n  password: {', '.join(ranked['password'])}\n" in out
    assert "refund:" not in out  # not augmented, so nothing to protect
