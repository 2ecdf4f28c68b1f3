# GridGuard developer entry points. Two commands matter on a fresh machine:
#   make demo   - virtualenv if needed, then the collector on the simulated panel, live
#   make test   - virtualenv, test services (influxd 2.7), lint, types, the whole suite
#
# Heavy things (the influxd build, pip's downloads) are cached under
# $(GRIDGUARD_CACHE) so later runs are fast.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
GRIDGUARD_CACHE ?= $(HOME)/.cache/gridguard
export GRIDGUARD_CACHE
BIN := $(VENV)/bin
STAMP := $(VENV)/.gridguard-installed

.PHONY: all demo test lint typecheck unit services bench clean help

all: help

help:
	@echo "make demo      run the collector on the simulated panel with a live table"
	@echo "make test      lint, type-check and run the whole test suite (starts influxd, mosquitto)"
	@echo "make bench     run the benchmark scripts and print their figures"
	@echo "make services  fetch or build the test services (influxd 2.7) into $(GRIDGUARD_CACHE)"

$(STAMP): pyproject.toml
	@if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "[make] installing python3-venv (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	  else \
	    echo "python3 cannot create virtualenvs: run 'sudo apt-get install python3-venv' and retry" >&2; exit 1; \
	  fi; \
	fi
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@echo "[make] installing GridGuard and its pinned dependencies into $(VENV)"
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/gridguard run --simulate

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy collector analytics

services:
	@tests/services/ensure-system-deps.sh
	@influx/dev/get-influxd.sh >/dev/null
	@tests/services/ensure-mosquitto.sh >/dev/null
	@tests/services/ensure-flux-lsp.sh >/dev/null

# The influxd, mosquitto and Flux language server paths are resolved (built on the first run, cached afterwards) before
# pytest starts; the fixture itself never builds. GRIDGUARD_REQUIRE_INFLUXD makes a
# missing influxd a failure rather than a skip.
test: $(STAMP)
	@tests/services/ensure-system-deps.sh
	$(BIN)/ruff check .
	$(BIN)/mypy collector analytics
	@INFLUXD="$$(influx/dev/get-influxd.sh | tail -n 1)" && export INFLUXD && \
	  MOSQUITTO="$$(tests/services/ensure-mosquitto.sh | tail -n 1)" && export MOSQUITTO && \
	  FLUX_LSP="$$(tests/services/ensure-flux-lsp.sh | tail -n 1)" && export FLUX_LSP && \
	  echo "[make] influxd: $$INFLUXD, mosquitto: $$MOSQUITTO, flux-lsp: $$FLUX_LSP" && \
	  GRIDGUARD_REQUIRE_INFLUXD=1 GRIDGUARD_REQUIRE_MOSQUITTO=1 GRIDGUARD_REQUIRE_FLUX_LSP=1 \
	  $(BIN)/python -m pytest -q -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/python -m pytest -q

# Benchmarks print figures (docs/performance.md), they assert nothing. The InfluxDB
# ones start their own influxd.
bench: $(STAMP)
	@export INFLUXD="$$(influx/dev/get-influxd.sh | tail -n 1)" && \
	  for s in tests/benchmarks/bench_*.py; do \
	    m=$$(basename $$s .py); echo "== $$m"; $(BIN)/python -m tests.benchmarks.$$m || exit 1; \
	  done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
