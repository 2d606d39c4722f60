"""The bucketed training loop (intentbal/training/bucketed.py) against the eager loop of fine_tune.

The CPU tests compare the two loops on the tiny dropout-free BERT; the CUDA ones (skipped without a
GPU, run by scripts/gpu_check.sh) check the CUDA graphs against the same loop without them, and that
a replayed step never waits for the host.
"""

import sys

import pytest
import torch

from intentbal.config import ModelConfig, TrainConfig
from intentbal.data.types import IntentData
from intentbal.model.encoding import encode, pad
from intentbal.training import bucketed
from intentbal.training.batching import shuffled_batches
from intentbal.training.loop import fine_tune
from intentbal.training.losses import weighted_cross_entropy

from conftest import toy_rows

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (scripts/gpu_check.sh)")
# texts past 16 tokens, so the steps use two widths at max length 32
LONG = [("where is my order and when will my parcel arrive and has my order shipped yet please", "track_order"),
        ("i want my money back please refund this purchase refund my payment money back", "refund"),
        ("forgot my password reset my password change the password on my login please", "password"),
        ("someone stole my card fraud on my account stolen card used please help", "fraud")]


def varied_data() -> IntentData:
    """The toy rows and four long ones: 25 rows, so batches of 8 leave a batch of 1 each epoch."""
    rows = toy_rows() + LONG
    return IntentData([t for t, _ in rows], [i for _, i in rows], "varied")


@pytest.fixture
def on_cpu(monkeypatch):
    """fine_tune on the CPU even where there is a GPU (scripts/gpu_check.sh runs this file there)."""
    from intentbal.training import distributed

    monkeypatch.setattr(distributed, "device", lambda: torch.device("cpu"))


def run(model_dir, mode, monkeypatch, *, head="prototype", graphs=None, **train):
    """fine_tune on varied_data through ``mode``'s loop: the result and each step's loss. In fp32 unless
    ``train`` says otherwise: the loops are compared to 1e-5, which bf16's 8-bit mantissa cannot show."""
    from intentbal.training import losses as losses_module

    losses = []
    settings = dict(epochs=4, batch_size=8, learning_rate=3e-3, warmup_ratio=0.25, save_steps=0, step=mode,
                    precision="fp32") | train
    with monkeypatch.context() as patch:
        if mode == "eager":
            real = losses_module.weighted_cross_entropy
            patch.setattr(losses_module, "weighted_cross_entropy", lambda *a, **k: _kept(losses, real(*a, **k)))
        else:
            real_train = bucketed.train
            patch.setattr(bucketed, "train", lambda *a, **k: _kept_all(losses, real_train(*a, graphs=graphs, **k)))
        result = fine_tune(varied_data(), train_config=TrainConfig(**settings), seed=3,
                           model_config=ModelConfig(name_or_path=str(model_dir), max_length=32, head=head))
    return result, torch.stack([torch.as_tensor(x).float().cpu() for x in losses])


def _kept(losses, loss):
    losses.append(loss.detach().clone())
    return loss


def _kept_all(losses, trained):
    losses.extend(trained.losses.cpu())
    return trained


# The attention key bias adds q.b to every score of a query alike, which the softmax cancels: its true
# gradient is 0, so what AdamW makes of its rounding noise differs between any two float paths.
NO_GRADIENT = ("attention.self.key.bias",)


def assert_same_weights(a, b, atol=1e-5):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        if not name.endswith(NO_GRADIENT):
            assert torch.allclose(p.detach().cpu(), q.detach().cpu(), atol=atol), name


# --- what a step is made of --------------------------------------------------------------------------------------


def test_widths_are_a_few_and_hold_every_text():
    assert bucketed.widths(64) == (16, 32, 48, 64)
    assert bucketed.widths(32) == (16, 32)
    assert bucketed.widths(20) == (16, 20)
    assert bucketed.widths(8) == (8,)
    assert bucketed.widths(100) == (16, 32, 48, 64, 100)
    assert bucketed.widths(512) == (16, 32, 48, 64, 128, 256, 512)
    choices = bucketed.widths(64)
    assert [bucketed.width_for(n, choices) for n in (1, 16, 17, 33, 48, 49, 64)] == [16, 16, 32, 48, 48, 64, 64]


def test_plan_holds_the_eager_loops_batches_and_fills_them_with_the_filler():
    ids = [[1] * n for n in (5, 1, 30, 9, 2, 17, 4, 3, 8, 12, 6)]
    stream = shuffled_batches(ids, 4, torch.Generator().manual_seed(7))
    expected = [next(stream) for _ in range(9)]  # three epochs of 4 + 4 + 3 rows
    plan = bucketed.plan_steps(shuffled_batches(ids, 4, torch.Generator().manual_seed(7)), 9, ids=ids, batch_size=4,
                         choices=(16, 32), filler=11, device=torch.device("cpu"))
    assert plan.rows.shape == (9, 4)
    for rows, batch, width, real in zip(plan.rows.tolist(), expected, plan.widths, plan.real):
        assert rows == batch + [11] * (4 - len(batch)) and real == len(batch)
        assert width == (32 if max(len(ids[i]) for i in batch) > 16 else 16)
    assert set(plan.widths) == {16, 32}


def test_additive_mask_means_what_the_2d_mask_means(tiny_model):
    from intentbal.model.loading import load_for_training

    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    four_d = bucketed.additive_mask(mask, torch.float32)
    low = torch.finfo(torch.float32).min
    assert four_d.shape == (2, 1, 3, 3)
    assert torch.equal(four_d[0, 0], torch.tensor([[0, 0, low]] * 3))
    assert torch.equal(four_d[1, 0, 2], torch.tensor([0, low, low]))
    texts = [t for t, _ in toy_rows()[:6]] + [LONG[0][0]]
    for head in ("prototype", "standard"):
        tokenizer, model = load_for_training(ModelConfig(name_or_path=str(tiny_model), head=head), ["a", "b", "c"])
        model.eval()
        input_ids, mask = pad(encode(tokenizer, texts, 32)[0], 0)
        seen: list[int] = []
        with torch.no_grad():
            plain = model(input_ids=input_ids, attention_mask=mask).logits
            hook = bucketed.use_4d_mask(model, torch.float32)
            probe = bucketed.encoder_of(model).register_forward_pre_hook(
                lambda _m, _args, kwargs, seen=seen: seen.append(kwargs["attention_mask"].dim()), with_kwargs=True)
            with_4d = model(input_ids=input_ids, attention_mask=mask).logits
            hook.remove()
            probe.remove()
        assert seen == [4], head  # the encoder got the 4-D mask
        assert torch.allclose(plain, with_4d, atol=1e-5), head


def test_filler_rows_change_neither_the_loss_nor_its_gradient():
    torch.manual_seed(0)
    logits = torch.randn(5, 4, requires_grad=True)
    targets = torch.tensor([0, 2, 1, 2, 3])
    weights = torch.tensor([0.5, 1.0, 2.0, 4.0])
    offset = torch.tensor([0.1, -0.2, 0.3, 0.0])
    reference = weighted_cross_entropy(logits, targets, weights, offset)
    real = weighted_cross_entropy(logits, targets, weights, offset, torch.ones(5))
    assert torch.allclose(real, reference, atol=1e-6)  # F.cross_entropy's sum(w_y * l) / sum(w_y)
    (grad,) = torch.autograd.grad(real, logits)

    filler = torch.randn(3, 4) * 10
    padded = torch.cat([logits, filler]).detach().requires_grad_()
    rows = torch.tensor([1.0] * 5 + [0.0] * 3)
    loss = weighted_cross_entropy(padded, torch.cat([targets, torch.zeros(3, dtype=torch.long)]), weights, offset,
                                  rows)
    (padded_grad,) = torch.autograd.grad(loss, padded)
    assert torch.allclose(loss, real, atol=1e-6)
    assert torch.allclose(padded_grad[:5], grad, atol=1e-7) and torch.equal(padded_grad[5:], torch.zeros(3, 4))
    unweighted = weighted_cross_entropy(padded, torch.cat([targets, torch.zeros(3, dtype=torch.long)]), None, None,
                                        rows)
    assert torch.allclose(unweighted, torch.nn.functional.cross_entropy(logits, targets), atol=1e-6)


# --- the bucketed loop against the eager loop, on the CPU --------------------------------------------------------


@pytest.mark.parametrize("head", ["prototype", "standard"])
def test_bucketed_loop_gives_the_eager_loops_losses_and_weights(tiny_model_without_dropout, monkeypatch, head, on_cpu):
    """Same rows, learning rates (warm-up included), clipping and AdamW: with dropout off the losses of
    every step agree to 1e-5, though the bucketed steps pad to fixed widths and add filler rows."""
    extra = {"loss_adjustment": 0.5} if head == "standard" else {}
    eager, eager_losses = run(tiny_model_without_dropout, "eager", monkeypatch, head=head, **extra)
    fast, fast_losses = run(tiny_model_without_dropout, "bucketed", monkeypatch, head=head, **extra)
    assert eager.steps == fast.steps == 16 and len(eager_losses) == len(fast_losses) == 16
    assert torch.allclose(fast_losses, eager_losses, atol=1e-5), (fast_losses - eager_losses).abs().max()
    assert eager_losses[-1] < eager_losses[0]  # it trained: the comparison is not of two idle models
    assert fast.train_samples == eager.train_samples == 4 * len(varied_data())
    assert_same_weights(fast.model, eager.model)


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "row-weights"])
def test_bucketed_loop_over_the_cached_lower_layers_gives_the_eager_loops_losses(tiny_model_without_dropout,
                                                                                 monkeypatch, weighted, on_cpu):
    """The default recipe's shape: the lower layer frozen and cached (one of the tiny model's two is
    trained) and, with self-training or description rows, rows of their own weight in the loss."""
    original = varied_data

    def data():
        rows = original()
        return rows.extended(["where is my stuff", "card gone"], ["track_order", "fraud"], weight=0.5) \
            if weighted else rows

    with monkeypatch.context() as patch:
        patch.setattr(sys.modules[__name__], "varied_data", data)
        eager, eager_losses = run(tiny_model_without_dropout, "eager", monkeypatch, trainable_layers=1)
        fast, fast_losses = run(tiny_model_without_dropout, "bucketed", monkeypatch, trainable_layers=1)
    assert len(eager_losses) == len(fast_losses) == eager.steps
    assert torch.allclose(fast_losses, eager_losses, atol=1e-5), (fast_losses - eager_losses).abs().max()
    assert eager_losses[-1] < eager_losses[0]
    assert_same_weights(fast.model, eager.model)


def test_bucketed_checkpoints_resume_to_the_same_model(tiny_model, tmp_path, on_cpu):
    """A bucketed run resumed from its checkpoint ends where the straight run does (dropout on: the
    checkpoint carries the random state)."""
    data, model = varied_data(), ModelConfig(name_or_path=str(tiny_model), max_length=32)
    config = TrainConfig(epochs=3, batch_size=8, save_steps=5, step="bucketed")
    straight = fine_tune(data, model_config=model, train_config=config, seed=1, checkpoint_dir=tmp_path / "ckpt")
    state = torch.load(tmp_path / "ckpt" / "state.pt", weights_only=True)
    assert state["step"] == 10 and state["scheduler"]["last_epoch"] == 10
    assert all(isinstance(g["lr"], float) for g in state["optimizer"]["param_groups"])
    resumed = fine_tune(data, model_config=model, train_config=config, seed=1, checkpoint_dir=tmp_path / "ckpt",
                        resume=True)
    assert resumed.resumed_from == 10 and resumed.train_samples == straight.train_samples
    assert_same_weights(resumed.model, straight.model, atol=1e-6)


def test_learning_rates_are_the_schedulers():
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    scheduler = get_linear_schedule_with_warmup(optimizer, 3, 10)
    table = bucketed.learning_rates(scheduler, 10)[0]
    seen = []
    for _ in range(10):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert table[:10] == seen and table[10] == 0.0


# --- CUDA: the graphs ----------------------------------------------------------------------------------------------


@CUDA
def test_cuda_graphs_replay_the_bucketed_step_exactly(tiny_model_without_dropout, monkeypatch):
    fp32 = {"precision": "fp32"}
    graphed, graphed_losses = run(tiny_model_without_dropout, "bucketed", monkeypatch, graphs=True, epochs=8, **fp32)
    plain, plain_losses = run(tiny_model_without_dropout, "bucketed", monkeypatch, graphs=False, epochs=8, **fp32)
    eager, eager_losses = run(tiny_model_without_dropout, "eager", monkeypatch, epochs=8, **fp32)
    assert torch.allclose(graphed_losses, plain_losses, atol=1e-5), (graphed_losses - plain_losses).abs().max()
    assert_same_weights(graphed.model, plain.model, atol=1e-4)
    # other widths, other kernels: the eager loop's fp32 sums differ in the last digits
    assert torch.allclose(graphed_losses, eager_losses, atol=1e-4), (graphed_losses - eager_losses).abs().max()
    assert_same_weights(graphed.model, eager.model, atol=1e-3)


@CUDA
def test_cuda_replays_and_eager_steps_never_wait_for_the_host(tiny_model, monkeypatch):
    real_step, real_eager = bucketed.Runner.step, bucketed.Runner._on_side_stream
    counts = {"replays": 0, "eager": 0}

    def strict(fn, kind):
        def call(self, batch, width):
            first = not any(self.eager_steps.values())  # the run's first step may initialise CUDA libraries
            if kind == "replays" and width not in self.graphs:
                return fn(self, batch, width)
            counts[kind] += 1
            torch.cuda.set_sync_debug_mode(0 if first else "error")
            try:
                return fn(self, batch, width)
            finally:
                torch.cuda.set_sync_debug_mode(0)
        return call

    monkeypatch.setattr(bucketed.Runner, "step", strict(real_step, "replays"))
    monkeypatch.setattr(bucketed.Runner, "_on_side_stream", strict(real_eager, "eager"))
    result = fine_tune(varied_data(), model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
                       train_config=TrainConfig(epochs=8, batch_size=8, save_steps=0), seed=0)
    assert result.steps == 32 and counts["replays"] > 0 and counts["eager"] > 0


@CUDA
def test_cuda_bucketed_loop_trains_in_bf16_and_resumes(tiny_model_without_dropout, tmp_path, monkeypatch):
    """The default on a GPU (auto: the bucketed loop, bf16) learns, and a resume ends where the straight
    run does (without dropout: checkpoints do not carry the GPU's random state)."""
    data, model = varied_data(), ModelConfig(name_or_path=str(tiny_model_without_dropout), max_length=32)
    config = TrainConfig(epochs=10, batch_size=8, learning_rate=3e-3, save_steps=7)  # auto: bucketed, bf16
    losses = []
    real_train = bucketed.train
    monkeypatch.setattr(bucketed, "train", lambda *a, **k: _kept_all(losses, real_train(*a, **k)))
    straight = fine_tune(data, model_config=model, train_config=config, seed=2, checkpoint_dir=tmp_path / "ckpt")
    steps = torch.stack(losses)
    assert len(steps) == 40 and torch.isfinite(steps).all() and steps[-8:].mean() < steps[:8].mean()
    resumed = fine_tune(data, model_config=model, train_config=config, seed=2, checkpoint_dir=tmp_path / "ckpt",
                        resume=True)
    assert resumed.resumed_from == 35
    assert_same_weights(resumed.model, straight.model, atol=1e-3)
