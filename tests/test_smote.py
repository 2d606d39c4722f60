"""SMOTE in embedding space: who gets a synthetic twin, what the model computes, and training with it."""

import pytest
import torch

from intentbal.config import ModelConfig, TrainConfig
from intentbal.training.loop import fine_tune
from intentbal.training.smote import EmbeddingSmote

from conftest import toy_data


def test_only_rows_of_rare_intents_get_partners_of_their_own_intent():
    # intent 0: 6 distinct texts, 1: 4, 2: 2 distinct texts duplicated to 4 rows, 3: 1 text
    texts = [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(4)] + ["c0", "c1", "c0", "c1"] + ["d0"]
    targets = [0] * 6 + [1] * 4 + [2] * 4 + [3]
    smote = EmbeddingSmote(texts, targets, seed=0)
    assert smote.rare == {2}  # median of distinct counts (6, 4, 2, 1) is 3; one text has no neighbour
    batch = list(range(len(texts)))
    mix, weight = smote.partners(batch, step=1)
    assert not weight.any()  # nothing remembered yet
    memory = torch.nn.functional.normalize(torch.randn(len(texts), 5), dim=-1)
    smote.store(batch, memory)
    mix, weight = smote.partners(batch, step=1)
    twins = [i for i in batch if weight[i] > 0]
    assert twins and set(twins) <= {10, 11, 12, 13}
    for i in twins:  # the partner is a stored embedding of another text of the same intent
        partner = [r for r in batch if torch.equal(memory[r], mix[i])]
        assert partner and all(targets[r] == targets[i] and texts[r] != texts[i] for r in partner)
        assert 0 < weight[i] < 1
    again, weight_again = smote.partners(batch, step=1)
    assert torch.equal(again, mix) and torch.equal(weight_again, weight)  # same step, same draw


def test_the_smote_head_appends_interpolated_rows_with_their_rows_targets(tiny_model):
    from intentbal.model.loading import load_for_training
    from intentbal.training.smote import SmoteHead

    tokenizer, model = load_for_training(ModelConfig(name_or_path=str(tiny_model)), ["a", "b", "c"])
    model.eval()
    enc = tokenizer(["where is my order", "refund me please", "hello"], padding=True, return_tensors="pt")
    other = torch.nn.functional.normalize(torch.randn(3, model.classifier.in_features), dim=-1)
    with torch.no_grad():
        plain = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        logits, targets, embeddings = SmoteHead(model)(enc["input_ids"], enc["attention_mask"],
                                                       torch.tensor([2, 0, 1]), other, torch.tensor([0.0, 0.25, 0.5]))
    assert plain.hidden_states is None  # the model's own forward gives logits only
    assert logits.shape == (5, 3) and logits.dtype == torch.float32
    assert torch.allclose(logits[:3], plain.logits, atol=1e-5)
    assert targets.tolist() == [2, 0, 1, 0, 1]  # each synthetic row has its own row's target
    e = torch.nn.functional.normalize(model.embed(enc["input_ids"], enc["attention_mask"]), dim=-1)
    assert torch.allclose(embeddings, e, atol=1e-6) and not embeddings.requires_grad
    w = torch.nn.functional.normalize(model.classifier.weight, dim=-1)
    for row, (source, weight) in enumerate([(1, 0.25), (2, 0.5)], start=3):
        point = torch.nn.functional.normalize(e[source] + weight * (other[source] - e[source]), dim=-1)
        assert torch.allclose(logits[row], model.config.scale * point @ w.T + model.classifier.bias, atol=1e-5)


@pytest.mark.slow  # 30 epochs, then a resumed run
def test_training_with_embedding_smote_learns_and_resumes_exactly(tiny_model, tmp_path):
    model_config = ModelConfig(name_or_path=str(tiny_model), max_length=32)
    train_config = TrainConfig(epochs=30, batch_size=8, learning_rate=3e-3, embedding_smote=True, save_steps=40)
    first = fine_tune(toy_data(), model_config=model_config, train_config=train_config, seed=0,
                      checkpoint_dir=tmp_path / "ckpt")
    enc = first.tokenizer(toy_data().texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        pred = first.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.argmax(-1)
    accuracy = sum(first.intents[p] == g for p, g in zip(pred.tolist(), toy_data().intents)) / len(pred)
    assert accuracy >= 0.8
    # the last checkpoint (step 80 of 90, the memory included) continues to the very same model
    resumed = fine_tune(toy_data(), model_config=model_config, train_config=train_config, seed=0,
                        checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert resumed.resumed_from == 80
    for (name, p), q in zip(first.model.named_parameters(), resumed.model.parameters()):
        assert torch.equal(p, q), name
    assert resumed.history == first.history and len(first.history) == 30
