# setlist: `make demo` runs the main job and serves it; `make test` runs lint, types and tests.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
BIN := $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data)

export OPENBLAS_NUM_THREADS := 1
# Tests and the demo read the real datasets through the mirror where ../shared/data exists.
ifneq ($(wildcard $(SHARED_DATA)/README.md),)
export SETLIST_DATA_MIRROR ?= $(SHARED_DATA)
endif

.PHONY: demo test install lint typecheck unit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/setlist demo

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
