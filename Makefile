# The shop: event-driven order system. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
PYTEST := $(UV) run --frozen pytest

.PHONY: help install setup run mail-sink lint format test test-unit test-integration test-e2e \
	test-deploy test-faults test-cluster test-fuzz test-ui bench bench-compare

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F ':.*?## ' '{printf "  %-18s %s\n", $$1, $$2}'

install: ## Install uv (if missing) and every package of the workspace into .venv
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --all-packages

setup: install ## Create each service's database, role and broker user, and the dev keys (idempotent)
	$(UV) run --frozen shopctl setup
	$(UV) run --frozen shopctl keys

# The mail sink runs only when nothing (e.g. Mailpit) listens on the SMTP port yet.
SMTP_PORT ?= 1025
# `make run REPLICAS=N`: N processes of each service process (see Procfile for their ports).
REPLICAS ?= 1
RUN_PROCESSES = order-api order-worker inventory payment email \
	$(shell (exec 3<>/dev/tcp/127.0.0.1/$(SMTP_PORT)) 2>/dev/null || echo mail)
RUN_CONCURRENCY = order-api=$(REPLICAS),order-worker=$(REPLICAS),inventory=$(REPLICAS),payment=$(REPLICAS),email=$(REPLICAS)

run: setup ## Start the whole system here: the services (+ a mail sink), Ctrl-C stops all; REPLICAS=N
	$(UV) run --frozen honcho start -c $(RUN_CONCURRENCY) $(RUN_PROCESSES)

mail-sink: ## An SMTP sink on 127.0.0.1:1025 that prints and keeps mail in .mail/
	$(UV) run --frozen shopctl mail-sink --maildir .mail

lint: ## ruff (lint + format check) and mypy (strict)
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy -p events -p service_kit -p order_service -p inventory_service \
		-p payment_service -p email_service -p shopctl -p shop_contract

format: ## Apply ruff's fixes and formatting
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

test: ## Every tier: unit, integration, e2e, deploy (needs PostgreSQL and RabbitMQ running)
	$(PYTEST) tests/unit tests/integration tests/e2e
	$(MAKE) test-deploy

test-unit: ## Unit tier: no I/O
	$(PYTEST) tests/unit

test-integration: ## Integration tier: real RabbitMQ and PostgreSQL
	$(PYTEST) tests/integration

test-e2e: ## End-to-end tier: the services as processes over HTTP, AMQP and SMTP
	$(PYTEST) tests/e2e

test-deploy: deploy-check ## Offline checks of Dockerfile, compose and Kubernetes manifests

test-fuzz: ## Fuzzing tier: schemathesis against every service's OpenAPI schema (with tokens)
	$(PYTEST) tests/fuzz

test-ui: ## UI tier: shopctl web in a real headless Chromium (Debian's package), services as processes
	@test -x /usr/bin/chromium || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	$(PYTEST) tests/ui

test-faults: ## Fault injection against the real processes, broker and database
	$(PYTEST) tests/faults

test-cluster: ## Three-node RabbitMQ cluster on this machine: kill -9, stop_app, traffic blocked
	@command -v iptables >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && apt-get install -y -qq iptables >/dev/null; }
	$(PYTEST) tests/cluster

bench: ## Benchmark the running stack on this machine (figures, not assertions)
	$(UV) run --frozen --group bench python -m bench $(BENCH_ARGS)

bench-compare: ## A/B in interleaved pairs: REF's services vs this tree's (REF=40fb385 BENCH_ARGS=throughput)
	@test -n "$(REF)" || { echo "usage: make bench-compare REF=<commit> [BENCH_ARGS='throughput --pairs 3']" >&2; exit 2; }
	$(UV) run --frozen --group bench python -m bench --compare $(REF) $(BENCH_ARGS)

.PHONY: asyncapi check-observability

asyncapi: ## Regenerate docs/asyncapi.yaml from the contract package (libs/shop_contract)
	$(UV) run --frozen python -m shop_contract.asyncapi > docs/asyncapi.yaml.tmp
	mv docs/asyncapi.yaml.tmp docs/asyncapi.yaml

check-observability: ## AsyncAPI current and valid; promtool on alert rules and dashboard queries
	@command -v promtool >/dev/null 2>&1 || { echo "promtool is missing: apt-get install -y prometheus" >&2; exit 1; }
	$(PYTEST) tests/unit/contract/test_asyncapi.py tests/unit/observability

include deploy/deploy.mk
