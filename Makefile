# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= build/demo
EXECUTOR ?= ray

.PHONY: demo test test-all lint bench clean browser

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

## Build the demo corpus (corpus/demo) on a local Ray cluster (live progress), print its stats, name the report.
demo: $(VENV)/.installed
	$(BIN)/mathcorpus run manifests/demo.yaml --executor $(EXECUTOR) --output $(OUT)
	$(BIN)/corpus-stats $(OUT)/corpus
	@echo "report: $(OUT)/report.html"

## Headless Chromium for the report's browser test (CI runs this; without it that one test is skipped).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }

## Run the test suite (slow benchmarks are skipped; `make test-all` runs them too).
test: $(VENV)/.installed
	$(BIN)/pytest -q

test-all: $(VENV)/.installed
	$(BIN)/pytest -q -m "slow or not slow"

lint: $(VENV)/.installed
	$(BIN)/ruff check .

clean:
	rm -rf build
