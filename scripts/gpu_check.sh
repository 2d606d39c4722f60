#!/usr/bin/env bash
# The GPU checks of the bucketed training step, in one go on a machine with a CUDA device
# (at most 7.5 minutes: the two steps are cut off at 90 s and 360 s):
#   1. tests/test_bucketed.py, whose CUDA tests compare the CUDA graphs with the same steps run
#      without them and with the eager loop, check that replayed and eager steps never wait for the
#      host (torch.cuda.set_sync_debug_mode("error")), and that bf16 training and resume work;
#   2. scripts/bench_speed.py --gpu at 20 epochs against the Trainer baseline: the default recipe, every
#      layer trained as the baseline does (--all-layers-too, the bucketed loop) and, for its quality,
#      the eager loop on every layer (--eager-too), written into BENCHMARKS.md's GPU section.
# Run from anywhere: bash scripts/gpu_check.sh (PYTHON=... picks the interpreter; default python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p runs
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0), 'torch', torch.__version__)"
timeout 90 $PY -m pytest -q -rs tests/test_bucketed.py
timeout 360 $PY scripts/bench_speed.py --gpu --epochs 20 --all-layers-too --eager-too --write BENCHMARKS.md | tee runs/gpu_check_speed.json
