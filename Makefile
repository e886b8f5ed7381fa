# Entry points for people and CI. Everything runs from a project-local venv
# (.venv) created on first use; services come from `creator-scores stack up`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CS := $(BIN)/creator-scores

.PHONY: setup bench-deps test-tools stack-up stack-down stack-status lint test test-unit test-integration test-e2e demo bench bench-smoke chaos chaos-docs clean

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

# Debian packages the tests drive, installed with apt-get when missing (as root, or via sudo):
# promtool checks the Prometheus config and alert rules (tests/unit/test_deploy_files.py);
# chromium is the widget's browser (tests/e2e/test_widget.py, through Playwright, which never
# downloads a browser of its own). A missing one fails the tests; they never skip.
TEST_TOOLS := promtool:prometheus chromium:chromium

test-tools:
	@missing=""; for pair in $(TEST_TOOLS); do 	  command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; 	done; 	if [ -n "$$missing" ]; then 	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; 	  echo "installing Debian packages for the tests:$$missing"; 	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && 	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; 	fi

test: setup bench-deps test-tools lint stack-up
	$(BIN)/pytest -q

test-unit: setup
	$(BIN)/pytest -q tests/unit

demo: stack-up
	$(CS) demo

bench: bench-deps stack-up
	$(BIN)/python -m bench.run

bench-smoke: bench-deps stack-up
	$(BIN)/python -m bench.run --smoke

# The fault suite on a private Kafka + Redis (free ports, a temp folder), with the 30-minute
# soak; confluent-kafka (the CRC-32 producer) comes with the bench extras. Not part of CI:
# `make test` runs its kill -9 and hostile-records scenarios (tests/chaos/test_chaos.py).
chaos: bench-deps
	$(BIN)/python -m tests.chaos --soak-minutes 30 --json docs/reliability.json --docs docs/reliability.md

chaos-docs: setup
	$(BIN)/python -m tests.chaos --docs-from docs/reliability.json --docs docs/reliability.md

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis
