# IOC Platform developer commands. `make demo` and `make test` work on a fresh machine: they install
# what is missing (Python packages into .venv, Debian packages, Kafka jars, Go builds into ~/.cache/ioc).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export UV_CACHE_DIR ?= $(HOME)/.cache/ioc/uv
PYTEST_ARGS ?=

.PHONY: help venv deps test test-fast lint format bench demo schemas clean

help:
	@echo "make demo       run the whole platform locally on real services"
	@echo "make test       install what is missing and run the whole test suite"
	@echo "make test-fast  unit tests only (no real services): -m 'not slow'"
	@echo "make lint       ruff, mypy --strict, import-linter"
	@echo "make bench      every benchmark; one JSON per benchmark in bench-results/"
	@echo "make deps       the local stack's prerequisites (apt, Maven, Go builds)"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --python $(PY) -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

deps: venv
	$(BIN)/ioc deps

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: deps
	$(PY) -m bench

schemas: venv
	$(BIN)/ioc schema export schemas

demo: deps
	$(BIN)/ioc stack up

clean:
	rm -rf $(VENV) bench-results .mypy_cache .ruff_cache .pytest_cache
