# Entry points for people and CI. Everything runs from a project-local venv
# (.venv) created on first use; services come from `creator-scores stack up`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CS := $(BIN)/creator-scores

.PHONY: setup bench-deps stack-up stack-down stack-status lint test test-unit test-integration test-e2e demo bench bench-smoke clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The benchmark's peer (Quix Streams) and plotting: `make test` runs the bench smoke test.
bench-deps: $(VENV)/.installed-bench

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
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

test: setup bench-deps lint stack-up
	$(BIN)/pytest -q

test-unit: setup
	$(BIN)/pytest -q tests/unit

demo: stack-up
	$(CS) demo

bench: bench-deps stack-up
	$(BIN)/python -m bench.run

bench-smoke: bench-deps stack-up
	$(BIN)/python -m bench.run --smoke

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis
