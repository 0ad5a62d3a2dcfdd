# The two commands: `make demo` (serve the demo on http://127.0.0.1:5000) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE_STAMP := $(VENV)/.installed-base
TEST_STAMP := $(VENV)/.installed-test
PYTEST_WORKERS ?= 2

.PHONY: demo test bench venv clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(BASE_STAMP): pyproject.toml $(wildcard web/translations/*/LC_MESSAGES/*.po) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(TEST_STAMP): pyproject.toml $(wildcard web/translations/*/LC_MESSAGES/*.po) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@ $(BASE_STAMP)

venv: $(BASE_STAMP)

## Create the environment, the SQLite database and today's demo city; serve it on port 5000.
demo: $(BASE_STAMP)
	$(BIN)/dispatch demo

## Run the whole suite on SQLite, and on PostgreSQL and Redis when they answer (installs
## Debian's Chromium for the browser tests when it can).
test: $(TEST_STAMP)
	@bash scripts/install-browser.sh
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

## Quality and speed benchmarks against the peers (long: see benchmarks/README.md).
bench: $(TEST_STAMP)
	$(BIN)/python -m benchmarks.solomon --instances all --time-limit 10 --rounds single,all
	$(BIN)/python -m benchmarks.days --dataset qingdao --time-limit 30
	$(BIN)/python -m benchmarks.days --dataset metro --time-limit 20
	$(BIN)/python -m benchmarks.slots
	$(BIN)/python -m benchmarks.reopt

clean:
	rm -rf $(VENV) instance/*.db instance/*.db-wal instance/*.db-shm
