# Every target bootstraps .venv itself: on a fresh machine `make quickstart` and `make test` are enough.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export RAY_USAGE_STATS_ENABLED := 0
export PYTHONUNBUFFERED := 1

.PHONY: setup quickstart test test-unit test-integration test-e2e bench lint format clean

# pip's output goes to .venv/install.log: one line here, the whole story there.
$(STAMP): pyproject.toml constraints.txt
	@echo "setting up $(VENV) (pip log: $(VENV)/install.log)"
	@$(PY) -m venv $(VENV)
	@$(BIN)/pip install --upgrade pip > $(VENV)/install.log 2>&1 || (tail -20 $(VENV)/install.log; exit 1)
	@$(BIN)/pip install -c constraints.txt -e '.[dev]' >> $(VENV)/install.log 2>&1 || (tail -20 $(VENV)/install.log; exit 1)
	@touch $(STAMP)

setup: $(STAMP)

quickstart: $(STAMP)
	@$(BIN)/python jobs/quickstart.py --config jobs/configs/quickstart.yaml

# `timeout` is the last line of defence against a hang (each test also has its own pytest-timeout):
# the suite takes ~30 min on 2 idle cores, most of it the documented-commands journey; CI allows 90.
test: $(STAMP)
	timeout --signal=INT --kill-after=60 4800 $(BIN)/python -m pytest -v tests

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e

bench: $(STAMP)
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# The style the code base is held to: ruff's linter and its formatter (line length in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check platform tests jobs bench cluster
	$(BIN)/ruff format --check platform tests jobs bench cluster

format: $(STAMP)
	$(BIN)/ruff format platform tests jobs bench cluster
	$(BIN)/ruff check --fix platform tests jobs bench cluster

clean:
	rm -rf $(VENV) .monovec .pytest_cache
