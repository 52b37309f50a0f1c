# Two commands do all the set-up on a fresh Debian/Ubuntu machine (as root):
#   make up    installs what is missing and brings the platform up
#   make test  installs the test tools too and runs lint, types, unit, integration and browser tests
#   make screenshots  the dashboard's main pages as PNGs in docs/screenshots/ (the README links them)
VENV ?= $(CURDIR)/.venv
BIN := $(VENV)/bin
export MYPAAS_VENV := $(VENV)

.PHONY: up down status install install-test test lint unit fuzz integration browser screenshots bench clean

up: install
	$(BIN)/mypaas up

down:
	$(BIN)/mypaas down

status:
	$(BIN)/mypaas status

install:
	scripts/install.sh

install-test:
	scripts/install.sh --test

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	cd src && $(BIN)/lint-imports --config ../pyproject.toml

unit: install-test
	$(BIN)/pytest -q tests/unit

fuzz: install-test
	$(BIN)/pytest -q tests/fuzz

integration: install-test
	$(BIN)/pytest -q tests/integration

browser: install-test
	$(BIN)/pytest -q tests/browser

screenshots: install-test
	$(BIN)/python scripts/screenshots.py

test: lint
	$(BIN)/pytest -q tests

# install-test: the dashboard's load benchmark drives Chromium through Playwright (a test tool)
bench: install-test
	$(BIN)/python bench/deploy_latency.py
	$(BIN)/python bench/zero_downtime.py
	$(BIN)/python bench/api_scale.py
	$(BIN)/python bench/import_throughput.py
	$(BIN)/python bench/deploy_from_source.py
	$(BIN)/python bench/monitor_overhead.py
	$(BIN)/python bench/heal_time.py
	$(BIN)/python bench/failover.py
	$(BIN)/python bench/cluster_deploy.py
	$(BIN)/python bench/dashboard_load.py
	$(BIN)/python bench/host_create.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
