# One-command set-up: every target installs what it needs into .venv first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA := src/geotessera/_data
ASSETS := $(DATA)/ASSETS.json
PYTEST_ARGS ?=

.PHONY: install assets browser test lint demo bench clean compat wheel-smoke

# Run-time data from the npm registry, made into the package as assets/assets.json lists
# (every wheel or sdist build runs the same step through setup.py).
$(ASSETS): assets/package.json assets/package-lock.json assets/assets.json assets/build.py
	$(PY) assets/build.py

assets: $(ASSETS)

$(STAMP): pyproject.toml setup.py src/geotessera/export/_lzw.c
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

# The browser tests drive Debian's chromium (headless, through playwright); never a downloaded browser.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test: lint browser
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# The newest other Python found (3.13, else 3.12) runs the unit, end-to-end and docs tests too.
COMPAT_PY ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python $(HOME)/.pyenv/versions/3.12*/bin/python) $(shell command -v python3.13 python3.12 2>/dev/null))

compat: $(ASSETS)
	@if [ -z "$(COMPAT_PY)" ]; then echo "compat: no Python 3.12/3.13 found, skipped"; exit 0; fi; \
	$(COMPAT_PY) -m venv .venv-compat && .venv-compat/bin/python -m pip install -q --upgrade pip && \
	.venv-compat/bin/python -m pip install -q -e '.[all,dev]' && \
	.venv-compat/bin/python -m pytest -n 2 -q -p no:cacheprovider tests/unit tests/integration/test_download.py tests/docs

# a wheel built from a clean clone of HEAD, installed without extras, smoke-tested (.ci/run runs it)
wheel-smoke: install
	bash .ci/wheel-smoke

demo: install
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/demo.sh

bench: install
	$(BIN)/python -m benchmarks $(BENCH)

clean:
	rm -rf $(VENV) .venv-compat demo-output benchmarks/results .pytest_cache .mypy_cache .ruff_cache
