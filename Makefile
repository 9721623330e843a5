# The shop: event-driven order system. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
PYTEST := $(UV) run --frozen pytest

.PHONY: help install lint format test test-unit test-integration test-e2e

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F ':.*?## ' '{printf "  %-18s %s\n", $$1, $$2}'

install: ## Install uv (if missing) and every package of the workspace into .venv
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --all-packages

lint: ## ruff (lint + format check) and mypy (strict)
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy -p events -p service_kit

format: ## Apply ruff's fixes and formatting
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

test: ## Every tier: unit, integration, e2e (needs PostgreSQL and RabbitMQ running)
	$(PYTEST) tests/unit tests/integration

test-unit: ## Unit tier: no I/O
	$(PYTEST) tests/unit

test-integration: ## Integration tier: real RabbitMQ and PostgreSQL
	$(PYTEST) tests/integration

test-e2e: ## End-to-end tier: the services as processes over HTTP, AMQP and SMTP
	$(PYTEST) tests/e2e
