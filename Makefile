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

.PHONY: demo test install lint typecheck security unit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The app (Streamlit) starts beside the API and stops with it.
demo: install
	@$(BIN)/setlist ui --api-url http://127.0.0.1:$${SETLIST_PORT:-8000} > $(VENV)/ui.log 2>&1 & ui=$$!; \
	trap "kill $$ui 2>/dev/null" EXIT; \
	echo "setlist API: http://127.0.0.1:$${SETLIST_PORT:-8000}/docs"; \
	echo "setlist app: http://127.0.0.1:8501 (dashboard: http://127.0.0.1:8501/dashboard)"; \
	$(BIN)/setlist demo

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

# bandit: no high-severity finding in src/. pip-audit: the installed (pinned) dependencies against
# the PyPI advisory database, skipped with the reason where that cannot be reached (offline CI).
security: install
	$(BIN)/bandit -q -r src --severity-level high
	@if $(BIN)/python -c "import urllib.request as u; u.urlopen('https://pypi.org/pypi/pip/json', timeout=5)" 2>/dev/null; \
	then $(BIN)/pip-audit --local --skip-editable; \
	else echo "pip-audit skipped: the advisory database (pypi.org) cannot be reached"; fi

test: lint typecheck security unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
