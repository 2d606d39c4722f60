import pytest

from intentbal.data.profiling import profile_intents, tier_of


def test_counts_shares_tiers_and_ratio():
    intents = ["big"] * 60 + ["mid"] * 20 + ["tiny"] * 3
    texts = [f"t{i}" for i in range(len(intents))]
    p = profile_intents(texts, intents, rare_max=10, frequent_min=50)
    assert [(r.intent, r.count, r.tier) for r in p.intents] == [
        ("tiny", 3, "rare"), ("mid", 20, "medium"), ("big", 60, "frequent")]
    assert p.intents[0].share == pytest.approx(3 / 83)
    assert p.imbalance_ratio == pytest.approx(20.0)
    assert p.median_count == 20
    assert p.n_examples == 83 and p.n_intents == 3


def test_tier_thresholds_are_inclusive():
    assert tier_of(10, rare_max=10, frequent_min=50) == "rare"
    assert tier_of(11, rare_max=10, frequent_min=50) == "medium"
    assert tier_of(50, rare_max=10, frequent_min=50) == "frequent"


def test_warnings():
    texts = ["hi", "hi", "hello", "yo", "bye", "bye now", "bye now!"]
    intents = ["greet", "greet", "greet", "greet", "greet", "leave", "leave"]
    texts.append("yo")
    intents.append("leave")
    p = profile_intents(texts, intents, eval_intents=["greet", "refund"], min_count=4)
    joined = "\n".join(p.warnings)
    assert "fewer than 4 examples: leave" in joined
    assert "1 exact duplicate" in joined
    assert "'yo' appears under 2 intents: greet, leave" in joined
    assert "missing from train: refund" in joined


def test_clean_data_has_no_warnings():
    p = profile_intents(["a", "b", "c", "d"], ["x", "x", "y", "y"], min_count=2)
    assert p.warnings == []
    assert p.to_dict()["intents"][0] == {"intent": "x", "count": 2, "share": 0.5, "tier": "rare"}
