# Two commands for a fresh machine with Python 3.11:  make repro  |  make test
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# dvc stages call `seqpipe` and `python` from the venv
export PATH := $(CURDIR)/$(BIN):$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
# stages use one thread (SEQPIPE_THREADS); should a user raise it, threads sleep rather than spin on shared cores
export OMP_WAIT_POLICY := PASSIVE
export PYTHONUNBUFFERED := 1
UI_PORT ?= 5000

.PHONY: install repro lint test test-fast test-slow ui bench browser clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

## make repro: set up, run every default experiment through DVC, print the summary table
repro: install
	test -d .dvc || $(BIN)/dvc init -q
	$(BIN)/dvc repro
	@cat metrics/summary.md

## make lint: ruff over the code (configured in pyproject.toml)
lint: install
	$(BIN)/ruff check src tests benchmarks

## make test: set up, lint, run the fast suite, then the slow (end-to-end, DDP, browser) suite
test: install lint browser
	$(BIN)/pytest -q
	$(BIN)/pytest -q -m slow

test-fast: install
	$(BIN)/pytest -q

## Debian's chromium for the MLflow UI browser test (Playwright drives it; never `playwright install`)
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the browser test will be skipped"

## make ui: the MLflow UI over the project's store, on 127.0.0.1
ui: install
	@mkdir -p mlruns
	@echo "MLflow UI: http://127.0.0.1:$(UI_PORT)  (Ctrl-C stops it)"
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db \
	  --default-artifact-root $(CURDIR)/mlruns/artifacts --host 127.0.0.1 --port $(UI_PORT) --workers 1

bench: install
	$(BIN)/python benchmarks/bench_text.py
	$(BIN)/python benchmarks/bench_threads.py

clean:
	rm -rf data/prepared models metrics reports mlruns
