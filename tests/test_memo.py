"""The encoder outputs a run's fits share: the frozen layers' states and the head's starting
embeddings, computed once per row and weights, and never read by a fit whose weights differ."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from test_frozen import TEXTS, _batch, _model
from test_refit import recipe

from conftest import toy_data, toy_rows, write_csv

CPU = torch.device("cpu")


def count_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each batch the frozen layers run holds, in order."""
    from intentbal.training.frozen import CachedBottom

    ran: list[int] = []
    real = CachedBottom._run

    def spy(self, chunk):
        ran.append(len(chunk))
        return real(self, chunk)

    monkeypatch.setattr(CachedBottom, "_run", spy)
    return ran


def test_the_digest_follows_the_weights_and_sees_the_hidden_frozen_layers(tiny_model: Path) -> None:
    from intentbal.model.memo import weights_digest
    from intentbal.training.frozen import freeze_lower

    (_, a), (_, b) = _model(tiny_model), _model(tiny_model)
    assert weights_digest([a]) == weights_digest([b])
    with torch.no_grad():
        b.encoder.embeddings.word_embeddings.weight[3, 0] += 1e-3
    assert weights_digest([a]) != weights_digest([b])

    top_a = freeze_lower(a, trainable=1, rows=[], device=CPU)
    top_b = freeze_lower(b, trainable=1, rows=[], device=CPU)
    assert top_a is not None and top_a.bottom is not None and top_b is not None and top_b.bottom is not None
    # the swapped-in bottom registers no parameters; its frozen layers count all the same
    assert weights_digest([top_a.bottom]) != weights_digest([top_b.bottom])
    assert weights_digest([a.encoder]) != weights_digest([b.encoder])


def test_outside_a_shared_block_nothing_is_kept(tiny_model: Path) -> None:
    from intentbal.model.memo import memo_table
    from intentbal.training.frozen import freeze_lower

    tokenizer, model = _model(tiny_model)
    ids, _ = _batch(tokenizer, TEXTS)
    assert memo_table("anything", [model]) is None
    frozen = freeze_lower(model, trainable=1, rows=ids, device=CPU)
    assert frozen is not None and frozen.bottom is not None and frozen.bottom.shared is None


def test_a_second_fit_reads_the_states_and_embeddings_the_first_computed(tiny_model: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from intentbal.model.memo import shared_encoder_outputs
    from intentbal.model.prototypes import init_prototypes
    from intentbal.training.frozen import freeze_lower

    data = toy_data()
    intents = sorted(set(data.intents))
    targets = torch.tensor([intents.index(i) for i in data.intents])

    def start(model, ids):
        frozen = freeze_lower(model, trainable=1, rows=ids, device=CPU)
        assert frozen is not None and frozen.bottom is not None
        init_prototypes(model, ids, targets, pad_id=0, device=CPU, batch_size=3, cached=frozen.bottom)
        return frozen.bottom.states.clone(), model.classifier.weight.detach().clone()

    tokenizer, alone = _model(tiny_model)
    ids, _ = _batch(tokenizer, data.texts)
    states, vectors = start(alone, ids)  # no sharing: the reference

    embedded: list[int] = []
    real_embed = type(alone).embed

    def embed_spy(self, input_ids, attention_mask=None):
        embedded.append(len(input_ids))
        return real_embed(self, input_ids, attention_mask)

    monkeypatch.setattr(type(alone), "embed", embed_spy)
    ran = count_rows(monkeypatch)
    with shared_encoder_outputs() as memo:
        first = start(_model(tiny_model)[1], ids)
        computed, embeddings = sum(ran), sum(embedded)
        assert computed == len(set(map(tuple, ids))) and embeddings == computed, "each distinct row once"
        second = start(_model(tiny_model)[1], ids)
        assert sum(ran) == computed and sum(embedded) == embeddings, "the second fit computed nothing"
        assert memo.hits == 2 * computed

        changed = _model(tiny_model)[1]
        with torch.no_grad():
            changed.encoder.encoder.layer[0].output.dense.weight.mul_(1.5)  # a frozen layer differs
        start(changed, ids)
        assert sum(ran) == 2 * computed and sum(embedded) == 2 * embeddings, "other weights: computed again"
    for got in (first, second):
        torch.testing.assert_close(got[0], states, rtol=0, atol=1e-6)
        torch.testing.assert_close(got[1], vectors, rtol=0, atol=1e-6)


def test_the_contrastive_stages_mean_embeddings_are_not_kept(tiny_model: Path) -> None:
    """``intent_means`` on weights that change between calls (the contrastive stage) keeps nothing."""
    from intentbal.model.memo import shared_encoder_outputs
    from intentbal.model.prototypes import intent_means

    data = toy_data()
    intents = sorted(set(data.intents))
    tokenizer, model = _model(tiny_model)
    ids, _ = _batch(tokenizer, data.texts)
    with shared_encoder_outputs() as memo:
        intent_means(model, ids, torch.tensor([intents.index(i) for i in data.intents]), pad_id=0, device=CPU)
    assert not memo.tables and memo.used_bytes == 0


def test_rows_beyond_the_limit_are_computed_again_not_kept(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from intentbal.model.memo import shared_encoder_outputs
    from intentbal.training.frozen import freeze_lower

    tokenizer, _ = _model(tiny_model)
    ids, _ = _batch(tokenizer, TEXTS)
    ran = count_rows(monkeypatch)
    with shared_encoder_outputs(limit_bytes=0) as memo:
        for _ in range(2):
            frozen = freeze_lower(_model(tiny_model)[1], trainable=1, rows=ids, device=CPU)
            assert frozen is not None and frozen.cached
    assert sum(ran) == 2 * len(TEXTS) and memo.used_bytes == 0 and memo.hits == 0


def test_the_refit_computes_only_the_rows_the_evaluated_fit_never_met(tmp_path: Path, fast_overrides: list[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    from intentbal.commands import train as train_command
    from intentbal.config import load_config
    from intentbal.model.encoding import encode

    data = write_csv(tmp_path / "train.csv", toy_rows())

    def run(name: str):
        ran = count_rows(monkeypatch)
        config = load_config(overrides=recipe(fast_overrides, "train.trainable_layers=1"),
                             values={"data.train": data, "output_dir": tmp_path / name})
        return train_command.train_run(config), sum(ran)

    shared, computed = run("shared")
    assert shared.refit is not None and shared.refit.held_out_rows > 0
    # the evaluated fit met its training rows and, scoring each epoch, the validation rows; the
    # refit trains on those and the eval rows: only the eval rows are new to the frozen layers
    ids, _ = encode(shared.shipped.classifier.tokenizer, shared.shipped.rows.texts, 32)
    assert computed == len(set(map(tuple, ids)))

    monkeypatch.setattr(train_command, "shared_encoder_outputs", contextlib.nullcontext)
    alone, computed_alone = run("alone")
    assert computed_alone > computed
    texts = [t for t, _ in toy_rows()]
    assert alone.shipped.classifier.predict(texts)[0] == shared.shipped.classifier.predict(texts)[0]
