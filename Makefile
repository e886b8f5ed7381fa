# Entry points for people and CI. Everything runs from a project-local venv
# (.venv) created on first use; services come from `creator-scores stack up`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CS := $(BIN)/creator-scores

.PHONY: setup stack-up stack-down stack-status lint test test-unit test-integration test-e2e demo bench bench-smoke clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

stack-up: setup
	$(CS) stack up

stack-down: setup
	$(CS) stack down

stack-status: setup
	$(CS) stack status

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy scoring streams

test: setup lint stack-up
	$(BIN)/pytest -q

test-unit: setup
	$(BIN)/pytest -q tests/unit

demo: stack-up
	$(CS) demo

bench: stack-up
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run

bench-smoke: stack-up
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run --smoke

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis
