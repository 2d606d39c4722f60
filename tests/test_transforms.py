"""The row-transform contract: rows in, rows out with provenance, the input never changed; the
recipe's list of transforms follows the config, in a fixed order."""

from __future__ import annotations

import copy

import pytest

from intentbal.config import load_config
from intentbal.data.types import IntentData, Provenance
from intentbal.rebalance.augmentation import AugmentRare, synthetic_rows
from intentbal.rebalance.capping import CapIntents
from intentbal.rebalance.description_rows import DescriptionRows
from intentbal.rebalance.pseudo import PseudoLabel, PseudoRows, pseudo_labels
from intentbal.rebalance.transforms import RowTransform, apply
from intentbal.training.recipe import row_transforms

from conftest import toy_data

PSEUDO = [PseudoLabel(text="parcel not here yet", intent="track_order", confidence=0.93),
          PseudoLabel(text="stolen wallet", intent="fraud", confidence=0.81)]
TRANSFORMS = {
    "capping": CapIntents(max_count=4, seed=0),
    "augmentation": AugmentRare(target_count=6, target_fraction=1.0, augmenters=["duplicate", "word_swap"], seed=0),
    "pseudo": PseudoRows(labels=PSEUDO, weight=0.5),
    "descriptions": DescriptionRows(texts={"fraud": "someone used my card without asking"}, weight=1.0),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_transform_keeps_its_input_and_marks_what_it_adds(name):
    transform = TRANSFORMS[name]
    assert isinstance(transform, RowTransform) and transform.name
    rows = toy_data()
    before = copy.deepcopy(rows)
    out = transform.resample(rows)
    assert rows == before  # the input is left as it was
    kept = [i for i in range(len(out)) if (out.provenance or [None] * len(out))[i] is None]
    added = [i for i in range(len(out)) if i not in kept]
    assert {(out.texts[i], out.intents[i]) for i in kept} <= set(zip(rows.texts, rows.intents))
    if name == "capping":
        assert not added and max(out.counts().values()) == 4
    else:
        assert added == list(range(len(out) - len(added), len(out)))  # added rows follow the rows given
    assert transform.resample(rows) == out  # seeded: the same rows again


def test_the_provenance_says_what_made_each_row():
    rows = apply(list(TRANSFORMS.values()), toy_data())
    assert {s.augmenter for s in synthetic_rows(rows)} <= {"duplicate", "word_swap"}
    assert all(s.source_text in toy_data().texts for s in synthetic_rows(rows))
    assert pseudo_labels(rows) == PSEUDO
    assert rows.made_by("description") == [len(rows) - 1]
    assert rows.weights is not None and rows.weights[-3:] == [0.5, 0.5, 1.0]
    assert len(rows.without("pseudo", "description")) == len(rows) - 3
    assert rows.provenance is not None and rows.provenance[-1] == Provenance(made_by="description")


@pytest.mark.parametrize(("sets", "expected"), [
    ([], []),
    (["augment.enabled=true"], ["augmentation"]),
    (["augment.max_per_intent=5"], ["capping"]),
    (["augment.enabled=true", "augment.max_per_intent=5"], ["capping", "augmentation"]),
])
@pytest.mark.parametrize("pseudo", [False, True])
@pytest.mark.parametrize("described", [False, True])
def test_the_recipe_orders_its_transforms(sets, expected, pseudo, described):
    config = load_config(overrides=sets)
    got = row_transforms(config, pseudo=PSEUDO if pseudo else (),
                         descriptions={"fraud": "card misuse"} if described else None)
    tail = (["pseudo-labels"] if pseudo else []) + (["description rows"] if described else [])
    assert [t.name for t in got] == expected + tail


def test_description_rows_can_be_turned_off():
    config = load_config(overrides=["train.description_rows=0"])
    assert row_transforms(config, descriptions={"fraud": "card misuse"}) == []


def test_data_without_added_rows_carries_no_provenance():
    rows = IntentData(["a", "b"], ["x", "y"], "s")
    assert rows.provenance is None and rows.made_by("augment") == [] and rows.without("pseudo") is rows
