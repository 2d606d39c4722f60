import pytest
import torch

from intentbal.config import TrainConfig
from intentbal.training.optimiser import make_optimiser, param_groups


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = torch.nn.Linear(8, 8)
        self.LayerNorm = torch.nn.LayerNorm(8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.LayerNorm(torch.tanh(self.dense(x))))


def _train(model: Tiny, optimizer: torch.optim.Optimizer, scheduler, steps: int) -> list[float]:
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        x, y = torch.randn(16, 8, generator=gen), torch.randint(3, (16,), generator=gen)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def test_weight_decay_falls_on_weight_matrices_only():
    decay, no_decay = param_groups(Tiny(), 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [torch.Size([8, 8]), torch.Size([3, 8])]
    assert len(no_decay["params"]) == 4  # two biases, the norm's weight and bias


def test_the_cpu_optimiser_is_fused_and_steps_as_the_per_tensor_adamw():
    """The fused kernel is a speed choice only: the weights it trains follow torch's reference loop."""
    config = TrainConfig(learning_rate=1e-2, weight_decay=0.01, warmup_ratio=0.2)
    torch.manual_seed(0)
    ours = Tiny()
    reference = Tiny()
    reference.load_state_dict(ours.state_dict())

    optimizer, scheduler = make_optimiser(ours, config, 30, torch.device("cpu"))
    assert optimizer.defaults["fused"] is True
    plain = torch.optim.AdamW(param_groups(reference, config.weight_decay), lr=config.learning_rate, foreach=False)
    from transformers import get_linear_schedule_with_warmup

    plain_schedule = get_linear_schedule_with_warmup(plain, 6, 30)
    got = _train(ours, optimizer, scheduler, 30)
    expected = _train(reference, plain, plain_schedule, 30)

    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert got[-1] < got[0]  # it learned
    for a, b in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
