# webchat — the two commands of the README, and a few more.
#   make run    install into .venv, apply migrations, serve http://127.0.0.1:5000 (SQLite, demo model)
#   make test   install the test dependencies (Python packages, Chromium), start PostgreSQL and
#               Redis when they are installed but down, and run the whole test suite

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

.PHONY: run test install install-test services lint bench audit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test
	scripts/install-chromium.sh

run: install
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) --workers 1 wsgi:app

services:
	scripts/services.sh

test: install-test services
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check webchat tests bench
	$(BIN)/ruff format --check webchat tests bench
	$(BIN)/mypy webchat

bench: install-test services   # ~30 min in all; each line also runs alone (docs/performance.md)
	$(BIN)/python -m bench.stream_persistence
	$(BIN)/python -m bench.stream_concurrency --db sqlite
	$(BIN)/python -m bench.stream_concurrency --db postgres
	$(BIN)/python -m bench.history --db sqlite,postgres
	$(BIN)/python -m bench.search_bench --sizes 100000
	$(BIN)/python -m bench.porting_bench

scripts/lighthouse/node_modules/.installed: scripts/lighthouse/package-lock.json
	cd scripts/lighthouse && npm ci --no-audit --no-fund
	touch $@

audit: install-test services scripts/lighthouse/node_modules/.installed   # Lighthouse, signed in, on a phone
	$(BIN)/python scripts/audit.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
