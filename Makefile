# The two commands a newcomer types: `make demo` and `make test`. Each creates .venv when missing.
# torch is installed first and pinned: an unpinned torch on a fresh venv resolves to a multi-GB CUDA
# build, while torch==2.13.0 is a CPU build that pip finds on this machine's local disk.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rnnkit-installed
TORCH_PIN := torch==2.13.0

.PHONY: demo test browser redis lint format venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The quickstart (`rnnkit quickstart`, ~10 minutes on 2 CPU cores): a BiLSTM + GloVe sentiment
# classifier, airline and electricity forecasters and a Shakespeare character LM on real data,
# each against its baseline, in one self-contained runs/quickstart/report.html. The demo's own
# folder is replaced on each `make demo`.
DEMO_OUT := runs/quickstart
demo: $(STAMP)
	$(PY) -m rnnkit datasets list
	rm -rf $(DEMO_OUT)
	$(PY) -m rnnkit quickstart --out $(DEMO_OUT)
	$(PY) -m rnnkit predict $(DEMO_OUT)/sentiment "a gorgeous, witty, seductive movie" \
		"the plot is a mess and the jokes fall flat" "not as bad as I feared"

# tests/apps/test_browser.py opens a report in Debian's headless chromium through its chromedriver;
# install both when missing (sudo unless already root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	command -v chromium >/dev/null && test -x /usr/bin/chromedriver || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver)

# tests/serve/test_redis.py starts its own redis-server (replicated serving, `--state redis://`);
# install Debian's when missing (sudo unless already root).
redis:
	command -v redis-server >/dev/null || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y redis-server)

test: $(STAMP) browser redis
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

# Peer tools on rnnkit's benchmark protocol (benchmarks/peers/README.md): one pinned environment
# per peer under benchmarks/peers/.venvs/<env>, each stamped so a second `make peers` does nothing.
# torch==2.13.0 goes in first, alone, where a peer needs torch (the CPU build on local disk), and
# constraints-torch.txt holds it there while the peer's own requirements resolve.
PEERS := benchmarks/peers
PEER_ENVS := keras stats darts neuralforecast
PEER_TORCH_ENVS := keras darts neuralforecast

.PHONY: peers
peers: $(foreach env,$(PEER_ENVS),$(PEERS)/.venvs/$(env)/.installed)

$(PEERS)/.venvs/%/.installed: $(PEERS)/requirements-%.txt $(PEERS)/constraints-torch.txt
	test -x $(PEERS)/.venvs/$*/bin/python || $(PYTHON) -m venv $(PEERS)/.venvs/$*
	$(if $(filter $*,$(PEER_TORCH_ENVS)),$(PEERS)/.venvs/$*/bin/pip install --quiet $(TORCH_PIN))
	$(PEERS)/.venvs/$*/bin/pip install --quiet -c $(PEERS)/constraints-torch.txt \
		-r $(PEERS)/requirements-$*.txt
	touch $@
