"""The training plan: every loop, forward and precision choice made once from the config, table-driven."""

from __future__ import annotations

import pytest

from intentbal.config import TrainConfig
from intentbal.errors import IntentbalError
from intentbal.training.plan import cpu_has_native_bf16, plan_training, uses_bf16

# (settings, device, processes) -> (loop, forward, bf16, graphs), or the error's fragment
CASES = [
    ({}, "cpu", 1, ("eager", "logits", False, False)),
    ({}, "cuda", 1, ("bucketed", "logits", True, True)),
    ({"precision": "fp32"}, "cuda", 1, ("bucketed", "logits", False, True)),
    ({"precision": "bf16"}, "cpu", 1, ("eager", "logits", True, False)),
    ({}, "cuda", 2, ("eager", "logits", True, False)),
    ({"step": "eager"}, "cuda", 1, ("eager", "logits", True, False)),
    ({"step": "bucketed"}, "cpu", 1, ("bucketed", "logits", False, False)),
    ({"trainable_layers": None}, "cuda", 1, ("bucketed", "logits", True, True)),
    ({"embedding_smote": True}, "cuda", 1, ("eager", "smote", True, False)),
    ({"contrastive_weight": 0.5}, "cpu", 1, ("eager", "contrastive", False, False)),
    ({"step": "bucketed"}, "cuda", 2, "found 2 processes"),
    ({"step": "bucketed", "embedding_smote": True}, "cpu", 1, "found train.embedding_smote on"),
    ({"step": "bucketed", "contrastive_weight": 0.5}, "cuda", 1, "found train.contrastive_weight set"),
]


@pytest.mark.parametrize(("settings", "device", "processes", "expected"), CASES)
@pytest.mark.parametrize("row_weights", [False, True])
def test_the_plan_of_each_combination(settings, device, processes, expected, row_weights):
    config = TrainConfig(**settings)
    kwargs = {"device_type": device, "processes": processes, "row_weights": row_weights, "prototype_head": True,
              "bf16_supported": device == "cuda"}
    if isinstance(expected, str):
        with pytest.raises(IntentbalError, match=f"train.step=bucketed: expected a single process.*{expected}"):
            plan_training(config, **kwargs)
        return
    plan = plan_training(config, **kwargs)
    assert (plan.loop, plan.forward, plan.bf16, plan.cuda_graphs) == expected
    assert plan.processes == processes and plan.row_weights is row_weights


@pytest.mark.parametrize("option", ["embedding_smote", "contrastive_weight"])
def test_the_embedding_terms_need_the_prototype_head(option):
    config = TrainConfig(**{option: True if option == "embedding_smote" else 0.5})
    with pytest.raises(IntentbalError, match="expected model.head=prototype"):
        plan_training(config, device_type="cpu", processes=1, row_weights=False, prototype_head=False)


def test_one_bf16_rule():
    assert uses_bf16("auto", bf16_supported=True)
    assert not uses_bf16("auto", bf16_supported=False)
    assert uses_bf16("bf16", bf16_supported=False)
    assert not uses_bf16("fp32", bf16_supported=True)


def test_auto_takes_bf16_on_a_cpu_only_with_native_bf16_instructions():
    line = "flags\t\t: fpu sse2 avx2 avx512f avx512bw {}\nmodel name\t: x\n"
    assert cpu_has_native_bf16("processor : 0\n" + line.format("avx512_bf16"))
    assert cpu_has_native_bf16(line.format("amx_bf16 amx_tile"))
    assert not cpu_has_native_bf16(line.format("avx512_vnni"))  # bf16 there is emulated: slower than fp32
    assert not cpu_has_native_bf16("")
    cpu = {"device_type": "cpu", "processes": 1, "row_weights": False, "prototype_head": True}
    assert plan_training(TrainConfig(), **cpu, bf16_supported=True).bf16
    assert not plan_training(TrainConfig(), **cpu, bf16_supported=False).bf16
    assert not plan_training(TrainConfig(precision="fp32"), **cpu, bf16_supported=True).bf16
