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

.PHONY: demo test install tools lint typecheck unit security image render-% pipeline clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# checkov (the Kubernetes policy scan, tests/deploy/test_overlays.py) in a venv of its own: its
# pinned dependencies (packaging, networkx, ...) conflict with the project's.
CHECKOV_VERSION := 3.3.30
TOOLS := .tools
$(TOOLS)/checkov/.installed:
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	touch $@

tools: $(TOOLS)/checkov/.installed

# The app (Streamlit) starts beside the API and stops with it.
demo: install
	@$(BIN)/setlist ui --api-url http://127.0.0.1:$${SETLIST_PORT:-8000} > $(VENV)/ui.log 2>&1 & ui=$$!; \
	trap "kill $$ui 2>/dev/null" EXIT; \
	echo "setlist API: http://127.0.0.1:$${SETLIST_PORT:-8000}/docs"; \
	echo "setlist app: http://127.0.0.1:8501 (dashboard: http://127.0.0.1:8501/dashboard)"; \
	$(BIN)/setlist demo

lint: install
	$(BIN)/ruff check src tests benchmarks pipelines
	$(BIN)/ruff format --check src tests benchmarks pipelines
	$(BIN)/lint-imports
	$(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/hadolint deploy/Dockerfile

typecheck: install
	$(BIN)/mypy

unit: install tools
	$(BIN)/pytest

# bandit: no finding of medium severity or more in src/ (skips, with reasons: [tool.bandit]).
# pip-audit: the installed (pinned) dependencies against the PyPI advisory database, skipped
# with the reason where that cannot be reached (offline CI).
security: install
	$(BIN)/bandit -q -c pyproject.toml -r src --severity-level medium
	@if $(BIN)/python -c "import urllib.request as u; u.urlopen('https://pypi.org/pypi/pip/json', timeout=5)" 2>/dev/null; \
	then $(BIN)/pip-audit --local --skip-editable; \
	else echo "pip-audit skipped: the advisory database (pypi.org) cannot be reached"; fi

test: lint typecheck security unit

# The image, tagged with the commit (CI: IMAGE=REGISTRY/setlist:SHA). Needs a Docker engine.
IMAGE ?= setlist:$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
image:
	docker build -f deploy/Dockerfile -t $(IMAGE) .

# build/k8s/OVERLAY.yaml: deploy/k8s/overlays/OVERLAY (staging, canary, production) with the
# image IMAGE_NAME at IMAGE_DIGEST (sha256:...) or else IMAGE_TAG; CI applies the file.
IMAGE_NAME ?= setlist
IMAGE_TAG ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
IMAGE_DIGEST ?=
render-%: install
	rm -rf build/k8s/$* && mkdir -p build/k8s/$*
	{ echo "apiVersion: kustomize.config.k8s.io/v1beta1"; echo "kind: Kustomization"; \
	  echo "resources: [../../../deploy/k8s/overlays/$*]"; \
	  echo "images:"; echo "  - name: setlist"; echo "    newName: $(IMAGE_NAME)"; \
	  if [ -n "$(IMAGE_DIGEST)" ]; then echo "    digest: $(IMAGE_DIGEST)"; \
	  else echo "    newTag: \"$(IMAGE_TAG)\""; fi; } > build/k8s/$*/kustomization.yaml
	$(BIN)/kubectl kustomize build/k8s/$* > build/k8s/$*.yaml

# The versioned pipeline (dvc.yaml: fetch, validate, train, evaluate); DVC skips unchanged stages.
pipeline: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
