# SigmaSight — everyday commands. Needs only Python 3.11+ and make; uv is bootstrapped into .tools/.
SHELL := /bin/bash
PYTHON ?= python3
UV_SYSTEM := $(shell command -v uv 2>/dev/null)
UV ?= $(if $(UV_SYSTEM),$(UV_SYSTEM),.tools/bin/uv)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system
PYTEST_ARGS ?=

.PHONY: help setup run test lint format seed validate reset bench clean check-python distributed k8s-validate

help: ## List targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
	  || { echo "Python 3.11+ is required (found: $$($(PYTHON) --version 2>&1)). Set PYTHON=/path/to/python3.11"; exit 1; }

.tools/bin/uv: | check-python
	@echo "bootstrapping uv into .tools/ (uv is not installed)"
	@$(PYTHON) -m venv .tools && .tools/bin/python -m pip install -q uv

.venv/.synced: pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml) | check-python $(if $(UV_SYSTEM),,.tools/bin/uv)
	@$(UV) sync --frozen --all-packages
	@touch $@

setup: .venv/.synced ## Install the workspace, migrate and seed (all-in-one, embedded PostgreSQL unless DATABASE_URL)
	@[ -f .env ] || cp .env.example .env
	@$(UV) run sigmasight seed

run: .venv/.synced ## Start all-in-one: embedded PostgreSQL, demo data, first cycle, API on SIGMASIGHT_PORT (8000)
	@$(UV) run sigmasight run

test: .venv/.synced ## Run the test suite (needs PostgreSQL and RabbitMQ: TEST_DATABASE_URL / TEST_AMQP_URL)
	@$(UV) run pytest $(PYTEST_ARGS)

lint: .venv/.synced ## Formatter check, linter and type checker
	@$(UV) run ruff format --check .
	@$(UV) run ruff check .
	@for pkg in libs/common/src services/*/src; do $(UV) run mypy $$pkg || exit 1; done

format: .venv/.synced ## Apply the formatter and autofixes
	@$(UV) run ruff format .
	@$(UV) run ruff check --fix .

seed: .venv/.synced ## Seed demo data (idempotent)
	@$(UV) run sigmasight seed

validate: .venv/.synced ## Check the demo data counts; non-zero exit naming what is missing
	@$(UV) run python -m allinone.validate

reset: .venv/.synced ## Drop and recreate the embedded demo database (development only; asks first)
	@read -p "Delete all local SigmaSight data in .sigmasight/? [y/N] " ans && [ "$$ans" = y ]
	@rm -rf .sigmasight
	@$(UV) run sigmasight seed

bench: .venv/.synced ## Benchmarks (not tests); writes docs/benchmarks.md
	@$(UV) run python -m allinone.bench

k8s-validate: .venv/.synced ## Render deploy/k8s overlays, validate them (Kubernetes 1.30 + CRD schemas), promtool the alerts
	@$(UV) run pytest tests/deploy -q -m "not integration"

clean: ## Remove the environment, caches and local data
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache .sigmasight
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
