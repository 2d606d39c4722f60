# Two entry points: `make demo` and `make test`. Both set up .venv from nothing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch when none is installed. pip takes the CPU build only where it is offered one (a local CPU
# wheel, as on CI); PyPI's Linux wheel is the multi-GB CUDA build. For the CPU build from PyTorch's
# index: make PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu TORCH_SPEC=torch==2.13.0+cpu
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo lint test test-fast test-slow setup clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/intentbal train --config configs/quickstart.yaml

# The gate before the tests: ruff's rules and mypy's types (settings in pyproject.toml).
lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

# Exit code 5 (no tests collected) is not a failure of the suite itself.
# test: lint, then every test (what CI runs); test-fast: the pure and tiny-model tests
# (minutes); test-slow: the tests marked slow.
test: lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

test-fast: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

test-slow: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m slow; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

clean:
	rm -rf $(VENV) runs *.egg-info
