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

# The quickstart: a BiLSTM with GloVe vectors on real movie reviews, then predictions from the
# saved run folder. The demo's own run folder is replaced on each `make demo`.
DEMO_RUN := runs/quickstart
demo: $(STAMP)
	$(PY) -m rnnkit datasets list
	$(PY) -m rnnkit datasets info rotten-tomatoes --stats
	rm -rf $(DEMO_RUN)
	$(PY) -m rnnkit train classifier --data rotten-tomatoes --cell lstm --bidirectional \
		--embeddings glove-6b-50d --out $(DEMO_RUN)
	$(PY) -m rnnkit evaluate $(DEMO_RUN)
	$(PY) -m rnnkit predict $(DEMO_RUN) "a gorgeous, witty, seductive movie" \
		"the plot is a mess and the jokes fall flat" "not as bad as I feared"

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
