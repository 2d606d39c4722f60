from intentbal.data.keywords import discriminative_words, words_in

ROWS = {
    "bot": ["are you a bot", "am i talking to a bot", "is this a bot or a human", "bot or person"],
    "card": ["my card is lost", "i lost my card", "where is my card", "card lost abroad", "block my card"],
    "fee": ["why is there a fee", "what is this fee", "fee on my statement", "a fee for my transfer"],
}
TEXTS = [t for texts in ROWS.values() for t in texts]
INTENTS = [i for i, texts in ROWS.items() for _ in texts]


def test_each_intents_own_word_comes_first():
    top = discriminative_words(TEXTS, INTENTS, top_k=2)
    assert [words[0] for words in top.values()] == ["bot", "card", "fee"]
    assert top["card"] == ["card", "lost"]


def test_words_an_intent_avoids_are_not_its_words():
    # "my" is in most card and fee rows and in no bot row: chi² scores that absence highly too
    top = discriminative_words(TEXTS, INTENTS, top_k=10)
    assert "my" not in top["bot"] and "my" in top["card"]
    assert set(top["bot"]) <= {w for t in ROWS["bot"] for w in words_in(t)}


def test_ties_are_broken_by_the_word_and_the_order_of_rows_does_not_matter():
    texts, intents = ["zeta alpha", "mid beta", "zeta alpha", "mid beta"], ["x", "y", "x", "y"]
    expected = {"x": ["alpha", "zeta"], "y": ["beta", "mid"]}
    assert discriminative_words(texts, intents, top_k=2) == expected
    assert discriminative_words(texts[::-1], intents[::-1], top_k=2) == expected


def test_top_k_caps_the_list_and_no_contrast_means_no_words():
    assert [len(w) for w in discriminative_words(TEXTS, INTENTS, top_k=1).values()] == [1, 1, 1]
    assert discriminative_words(ROWS["bot"], ["bot"] * 4, top_k=3) == {"bot": []}
    assert discriminative_words(["x y", "z"], ["a", "b"], top_k=3) == {"a": [], "b": []}  # no word of 2+ letters


def test_words_are_lowercased_word_runs_of_two_or_more_characters():
    assert words_in("Card's top-up? A bot!") == ["card", "top", "up", "bot"]
