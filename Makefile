# The two commands a newcomer types: `make demo` and `make test`. Each creates .venv when missing.
# torch is installed first and pinned: an unpinned torch on a fresh venv resolves to a multi-GB CUDA
# build, while torch==2.13.0 is a CPU build that pip finds on this machine's local disk.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rnnkit-installed
TORCH_PIN := torch==2.13.0

.PHONY: demo test lint format venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m rnnkit datasets list
	$(PY) -m rnnkit datasets fetch rotten-tomatoes
	$(PY) -m rnnkit datasets info rotten-tomatoes --stats

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
