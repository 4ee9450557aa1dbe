# codeclab developer entry points. Quick start: `make demo`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# torch first, pinned: on the project machines pip finds this CPU build on local disk;
# installing it before anything that depends on torch keeps pip from pulling a CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test test-slow test-all venv dev clean

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base pyproject.toml
	$(PIP) install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.base
dev: $(VENV)/.dev

demo: $(VENV)/.base
	$(VENV)/bin/codeclab demo --out demo-out

test: $(VENV)/.dev
	$(PY) -m pytest -q

test-slow: $(VENV)/.dev
	$(PY) -m pytest -q -m slow

test-all: $(VENV)/.dev
	$(PY) -m pytest -q -m "slow or not slow"

clean:
	rm -rf $(VENV) demo-out build *.egg-info .pytest_cache
