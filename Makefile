# `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TYPECHECK := .build/typecheck/freegin_ai
LAYERS := domain projections adapters cli

.PHONY: run test lint typecheck imports pytest bench bench-peers bench-memory clean typecheck-tree

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python >= 3.11 is required" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/freegin-ai list-models

# mypy and import-linter read the source through a tree of links named like the installed package.
typecheck-tree:
	@mkdir -p $(TYPECHECK)
	@for layer in $(LAYERS); do ln -sfn ../../../$$layer $(TYPECHECK)/$$layer; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) typecheck-tree
	$(BIN)/mypy -p freegin_ai
	$(BIN)/mypy tests

imports: $(STAMP) typecheck-tree
	PYTHONPATH=.build/typecheck $(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck imports pytest

bench: $(STAMP)
	$(BIN)/python -m tests.bench

# The peers we measure against live in their own environments, never in the project's venv.
PEERS := .build/peers
LITELLM := $(PEERS)/litellm/bin/python
LITELLM_PROXY := $(PEERS)/litellm/.proxy-installed

# LiteLLM (its Router and its proxy with the server's dependencies: tests/bench/peers-requirements.txt).
$(LITELLM_PROXY): tests/bench/peers-requirements.txt
	@test -n "$(PYTHON)" || { echo "error: Python >= 3.11 is required" >&2; exit 1; }
	@test -x $(LITELLM) || $(PYTHON) -m venv $(PEERS)/litellm
	$(LITELLM) -m pip install --quiet --upgrade pip
	$(LITELLM) -m pip install --quiet -r tests/bench/peers-requirements.txt
	@touch $@

# wrk, the load generator (a Debian package).
WRK := command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }

# The router against LiteLLM's Router, then the gateway against LiteLLM's proxy, both loaded
# by wrk, all in front of the same fast fake provider; then the gateway's memory run.
bench-peers: $(STAMP) $(LITELLM_PROXY)
	$(BIN)/python -m tests.bench.peers --litellm-python $(LITELLM) $(PEERS_ARGS)
	@$(WRK)
	$(BIN)/python -m tests.bench.peers_gateway --litellm $(PEERS)/litellm/bin/litellm $(GATEWAY_ARGS)

# The gateway's resident memory over 100,000 requests, alone (no LiteLLM needed).
bench-memory: $(STAMP)
	@$(WRK)
	$(BIN)/python -m tests.bench.peers_gateway --only memory $(GATEWAY_ARGS)

clean:
	rm -rf $(VENV) .build .pytest_cache .mypy_cache .ruff_cache .hypothesis
