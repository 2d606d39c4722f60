import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from intentbal.config import TrainConfig
from intentbal.training.losses import IntentLoss, class_weights, weighted_cross_entropy

from conftest import ROOT

COUNTS = [100, 10, 1]


def test_none_is_all_ones():
    assert class_weights(COUNTS, scheme="none").tolist() == [1.0, 1.0, 1.0]


def test_inverse_matches_sklearn_balanced():
    # N / (K * n_c) with N = 111, K = 3
    expected = [111 / 300, 111 / 30, 111 / 3]
    np.testing.assert_allclose(class_weights(COUNTS, scheme="inverse"), expected)


def test_sqrt_inverse_by_hand():
    raw = np.array([1 / 10, 1 / np.sqrt(10), 1.0])
    scale = 111 / (100 * raw[0] + 10 * raw[1] + 1 * raw[2])
    np.testing.assert_allclose(class_weights(COUNTS, scheme="sqrt_inverse"), raw * scale)


def test_effective_number_by_hand():
    beta = 0.9
    raw = np.array([(1 - beta) / (1 - beta**n) for n in COUNTS])
    scale = 111 / (100 * raw[0] + 10 * raw[1] + 1 * raw[2])
    np.testing.assert_allclose(class_weights(COUNTS, scheme="effective_number", beta=beta), raw * scale)
    # a class of one example gets the full weight 1 before scaling
    assert raw[2] == pytest.approx(1.0)


@pytest.mark.parametrize("scheme", ["none", "inverse", "sqrt_inverse", "effective_number"])
def test_mean_weight_per_example_is_one(scheme):
    w = class_weights(COUNTS, scheme=scheme)
    assert float(np.dot(w, COUNTS)) == pytest.approx(sum(COUNTS))
    assert list(w) == sorted(w), "rarer classes never get less weight"


def test_bad_counts_and_scheme():
    with pytest.raises(ValueError):
        class_weights([3, 0], scheme="inverse")
    with pytest.raises(ValueError):
        class_weights([3, 1], scheme="focal")


def test_weighted_cross_entropy_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    targets = torch.tensor([0, 1, 1])
    weights = torch.tensor([1.0, 3.0])
    logp = torch.log_softmax(logits, dim=-1)
    nll = -logp[torch.arange(3), targets]
    expected = (1 * nll[0] + 3 * nll[1] + 3 * nll[2]) / 7
    assert weighted_cross_entropy(logits, targets, weights).item() == pytest.approx(expected.item())
    assert weighted_cross_entropy(logits, targets, None).item() == pytest.approx(nll.mean().item())


def test_offset_is_added_inside_the_loss_only():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([0, 1])
    offset = torch.tensor([0.5, -1.0])
    assert weighted_cross_entropy(logits, targets, None, offset).item() == pytest.approx(
        weighted_cross_entropy(logits + offset, targets, None).item())
    assert torch.equal(logits, torch.tensor([[2.0, 0.0], [0.0, 1.0]]))


@pytest.mark.parametrize("tau", [0.0, 1.0])
def test_logit_adjusted_loss_learns_balanced_scores(tau):
    # A model with nothing but a bias, fitted to 9:1 data: plain cross-entropy learns the
    # log prior, the logit-adjusted loss (tau 1) learns equal scores for both intents.
    targets = torch.tensor([0] * 90 + [1] * 10)
    log_prior = torch.log(torch.tensor([0.9, 0.1]))
    bias = torch.zeros(2, requires_grad=True)
    optimiser = torch.optim.LBFGS([bias], max_iter=200)

    def closure():
        optimiser.zero_grad()
        loss = weighted_cross_entropy(bias.expand(100, 2), targets, None, tau * log_prior)
        loss.backward()
        return loss

    optimiser.step(closure)
    learned = (bias[0] - bias[1]).item()
    assert learned == pytest.approx((1 - tau) * (log_prior[0] - log_prior[1]).item(), abs=1e-3)


def test_loss_is_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    logits = (torch.randn(16, 5) * 20).to(torch.bfloat16)
    targets = torch.randint(0, 5, (16,))
    weights = torch.tensor([0.3, 1.0, 2.0, 0.5, 4.0])
    offset = torch.tensor([-0.1, -2.0, -0.7, -3.3, -1.2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = weighted_cross_entropy(logits, targets, weights, offset)
    full = torch.nn.functional.cross_entropy(logits.float() + offset, targets, weight=weights)
    assert mixed.dtype == torch.float32
    assert mixed.item() == pytest.approx(full.item(), rel=1e-6)


def test_importing_the_losses_does_not_import_torch():
    code = "import sys, intentbal.training.losses, intentbal.training.smote; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip() == "False", proc.stderr


def test_the_loss_module_holds_its_weights_and_offset_as_buffers():
    counts, intents = {"big": 6, "small": 2}, ["big", "small"]
    loss = IntentLoss.from_config(TrainConfig(weighting="inverse", loss_adjustment=0.5), counts, intents)
    buffers = dict(loss.named_buffers())
    assert set(buffers) == {"weights", "offset"} and not list(loss.parameters())
    assert buffers["weights"].tolist() == pytest.approx([8 / 12, 8 / 4])  # N / (K * n_c)
    assert buffers["offset"].tolist() == pytest.approx([0.5 * math.log(6 / 8), 0.5 * math.log(2 / 8)])
    assert loss.state_dict() == {}  # derived from config and counts: nothing to save
    moved = loss.to(torch.device("meta"))
    assert moved.weights.device.type == "meta" and moved.offset.device.type == "meta"


def test_the_loss_module_is_weighted_cross_entropy_of_the_offset_logits():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    targets = torch.tensor([0, 1, 1])
    loss = IntentLoss(weights=[1.0, 3.0], offset=[0.5, -1.0])
    logp = torch.log_softmax(logits + torch.tensor([0.5, -1.0]), dim=-1)
    nll = -logp[torch.arange(3), targets]
    assert loss(logits, targets).item() == pytest.approx(((nll[0] + 3 * nll[1] + 3 * nll[2]) / 7).item())
    assert loss(logits, targets).item() == pytest.approx(torch.nn.functional.cross_entropy(
        logits + torch.tensor([0.5, -1.0]), targets, weight=torch.tensor([1.0, 3.0])).item())


def test_no_weighting_and_no_adjustment_is_plain_cross_entropy():
    loss = IntentLoss.from_config(TrainConfig(weighting="none", loss_adjustment=0.0), {"a": 5, "b": 1}, ["a", "b"])
    assert loss.weights is None and loss.offset is None
    logits, targets = torch.tensor([[2.0, -1.0], [0.5, 0.25]]), torch.tensor([1, 0])
    assert torch.equal(loss(logits, targets), torch.nn.functional.cross_entropy(logits, targets))
