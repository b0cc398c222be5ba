# One-command set-up: every target installs what it needs into .venv first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA := src/geotessera/_data
ASSETS := $(DATA)/countries-10m.json
PYTEST_ARGS ?=

.PHONY: install assets test lint demo bench clean

# Run-time data from the npm registry (country shapes), copied into the package.
$(ASSETS): assets/package.json assets/package-lock.json
	cd assets && npm ci --no-audit --no-fund --silent
	mkdir -p $(DATA)
	cp assets/node_modules/world-atlas/countries-10m.json $(DATA)/
	cp assets/node_modules/world-atlas/LICENSE $(DATA)/world-atlas-LICENSE

assets: $(ASSETS)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP) $(ASSETS)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

demo: install
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/demo.sh

bench: install
	$(BIN)/python -m benchmarks $(BENCH)

clean:
	rm -rf $(VENV) demo-output benchmarks/results .pytest_cache .mypy_cache .ruff_cache
