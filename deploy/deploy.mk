# Deployment targets, included by the root Makefile (`include deploy/deploy.mk`).
# Paths are relative to the repository root, where make runs.
#
#   uv run shopctl keys && cp .env.example .env && make up   # whole system in Docker Compose
#   make kind-up kind-load kind-deploy kind-e2e kind-down
#   make deploy-check                    # offline checks of all of the above
#   make test-compose                    # the Compose stack for real (engine installed if missing)
#   make prometheus-rule                 # the production overlay's PrometheusRule from alerts.yml

UV ?= uv
COMPOSE ?= docker compose
KIND ?= kind
KUBECTL ?= kubectl
KIND_CLUSTER ?= shop
KIND_CONFIG ?= deploy/kind/cluster.yaml
KIND_OVERLAY ?= deploy/k8s/overlays/kind
# Pinned here and checked by tests/deploy; kept out of uv.lock (large dependency tree).
CHECKOV_VERSION ?= 3.3.30
# Extra flags for `make down`, e.g. DOWN_FLAGS=-v to also delete the data volumes.
DOWN_FLAGS ?=
# Where `shopctl keys` keeps the dev keys: .env's SHOP_KEYS_DIR (compose reads it
# there too), else .secrets (gitignored). Compose and kind get only the public
# halves and the payment service's private key, never auth-signing.pem.
SHOP_KEYS_DIR ?= $(or $(shell sed -n 's/^SHOP_KEYS_DIR=//p' .env 2>/dev/null | tail -n 1),.secrets)
SHOP_KEY_FILES := auth-verify.pem payment-sealing.pub.pem payment-sealing.pem
# CA bundle for the image builds' PyPI downloads (BuildKit secret `build_ca`, never
# stored in an image): behind a TLS-intercepting proxy, one that trusts the proxy.
SHOP_BUILD_CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
SHOP_BUILD_SECRET = --secret id=build_ca,src=$(SHOP_BUILD_CA_BUNDLE)

# kubectl always names the kind cluster, never whatever context is current.
SHOP_KUBECTL = $(KUBECTL) --context kind-$(KIND_CLUSTER) --namespace shop
# service:port; the k8s manifests expect the images shop/<package>:dev.
SHOP_SERVICE_PORTS := order:8000 inventory:8001 payment:8002 email:8003
shop_svc = $(word 1,$(subst :, ,$(1)))
shop_port = $(word 2,$(subst :, ,$(1)))
SHOP_IMAGES := $(foreach s,$(SHOP_SERVICE_PORTS),shop/$(call shop_svc,$(s))-service:dev) shop/shopctl:dev
# The Deployments: the order service runs as order-api and order-worker (one image).
SHOP_DEPLOYMENTS := mailpit order-api order-worker inventory payment email

.PHONY: up compose-keys down logs test-compose kind-up kind-load kind-keys kind-deploy kind-e2e kind-down deploy-tools deploy-check prometheus-rule

up: compose-keys ## Whole system in Docker Compose (needs .env: cp .env.example .env, and the keys)
	$(COMPOSE) up -d --build --wait

# Compose without Swarm bind-mounts a secret file with its host owner and mode, and
# the payment container runs as uid 10001: the private key must be readable by
# others, so the directory that holds it is made private instead.
compose-keys: ## Check .env and the keys Compose mounts as secrets (made by `uv run shopctl keys`)
	@test -f .env || { echo "No .env file: run 'cp .env.example .env' first (dev-only values)." >&2; exit 1; }
	@for f in $(SHOP_KEY_FILES); do test -f "$(SHOP_KEYS_DIR)/$$f" || { \
		echo "No $(SHOP_KEYS_DIR)/$$f: run 'uv run shopctl keys --dir $(SHOP_KEYS_DIR)' first." >&2; exit 1; }; done
	@chmod 0700 "$(SHOP_KEYS_DIR)" && chmod 0644 "$(SHOP_KEYS_DIR)/payment-sealing.pem"

down: ## Stop the Compose stack (DOWN_FLAGS=-v also deletes its data)
	$(COMPOSE) down --remove-orphans $(DOWN_FLAGS)

logs: ## Follow the Compose stack's logs
	$(COMPOSE) logs -f

# Installs and starts a Docker engine from Debian's packages if none answers (root), builds
# TEST STAND-INS for images no registry serves, then build, up --wait, e2e scenarios, a
# container killed mid-flow, down -v; its own project name, env file and ports (18xxx).
test-compose: ## The whole Compose stack for real: build, up, e2e, kill/restart, down -v
	UV="$(UV)" bash tests/compose/run.sh

kind-up: ## Create the local kind cluster `shop` (kind >= v0.33.0)
	$(KIND) create cluster --config $(KIND_CONFIG) --name $(KIND_CLUSTER)

kind-load: ## Build the five images and load them into the kind cluster
	$(foreach s,$(SHOP_SERVICE_PORTS),docker build $(SHOP_BUILD_SECRET) --build-arg PACKAGE=$(call shop_svc,$(s))-service --build-arg PORT=$(call shop_port,$(s)) -t shop/$(call shop_svc,$(s))-service:dev . &&) \
	docker build $(SHOP_BUILD_SECRET) --build-arg PACKAGE=shopctl --target tool -t shop/shopctl:dev .
	$(KIND) load docker-image --name $(KIND_CLUSTER) $(SHOP_IMAGES)

# The key Secrets the base mounts, from `shopctl keys` (made if missing, never
# committed): the public halves, and the private key that only payment mounts.
kind-keys: ## Dev keys (shopctl keys) as the kind cluster's Secrets
	$(UV) run --frozen shopctl keys --dir $(SHOP_KEYS_DIR)
	$(KUBECTL) --context kind-$(KIND_CLUSTER) apply -f deploy/k8s/base/namespace.yaml
	$(SHOP_KUBECTL) create secret generic auth-verify-key \
		--from-file=auth-verify.pem=$(SHOP_KEYS_DIR)/auth-verify.pem --dry-run=client -o yaml \
		| $(SHOP_KUBECTL) apply -f -
	$(SHOP_KUBECTL) create secret generic payment-sealing-public-key \
		--from-file=payment-sealing.pub.pem=$(SHOP_KEYS_DIR)/payment-sealing.pub.pem --dry-run=client -o yaml \
		| $(SHOP_KUBECTL) apply -f -
	$(SHOP_KUBECTL) create secret generic payment-sealing-key \
		--from-file=payment-sealing.pem=$(SHOP_KEYS_DIR)/payment-sealing.pem --dry-run=client -o yaml \
		| $(SHOP_KUBECTL) apply -f -

# A Job's pod template is immutable, so the (idempotent) setup Job is replaced on
# every deploy. Migrations wait for it inside their init containers.
kind-deploy: kind-keys ## Apply the kind overlay and wait until everything is ready
	$(SHOP_KUBECTL) delete job setup --ignore-not-found --wait=true
	$(KUBECTL) --context kind-$(KIND_CLUSTER) apply -k $(KIND_OVERLAY)
	$(SHOP_KUBECTL) rollout status statefulset/rabbitmq --timeout=5m
	$(SHOP_KUBECTL) rollout status statefulset/postgres --timeout=5m
	$(SHOP_KUBECTL) wait --for=condition=complete job/setup --timeout=10m
	$(foreach d,$(SHOP_DEPLOYMENTS),$(SHOP_KUBECTL) rollout status deployment/$(d) --timeout=5m &&) true

# The order API is a NodePort; the other APIs and the broker (for the event tap)
# are reached through port-forwards that end with the recipe. The tap logs in as
# shop_operator; tokens are signed with the keys kind-keys gave the cluster.
kind-e2e: ## End-to-end tests against the kind deployment (localhost:8000)
	@set -e; trap 'kill $$(jobs -p) 2>/dev/null' EXIT; \
	for target in svc/inventory:18001:8001 svc/payment:18002:8002 svc/email:18003:8003 svc/rabbitmq:15673:5672; do \
		IFS=: read -r name local remote <<< "$$target"; \
		$(SHOP_KUBECTL) port-forward "$$name" "$$local:$$remote" >/dev/null & \
	done; \
	secret=$$($(SHOP_KUBECTL) get secrets -o name | grep '/operator-credentials'); \
	password=$$($(SHOP_KUBECTL) get "$$secret" -o jsonpath='{.data.AMQP_PASSWORD}' | base64 -d); \
	sleep 3; \
	E2E_TARGET=external SHOP_SECRETS_DIR=$(SHOP_KEYS_DIR) ORDER_URL=http://localhost:8000 \
	INVENTORY_URL=http://localhost:18001 PAYMENT_URL=http://localhost:18002 EMAIL_URL=http://localhost:18003 \
	AMQP_URL="amqp://shop_operator:$$password@localhost:15673/" \
	$(UV) run --frozen pytest tests/e2e -m "not local_processes"

kind-down: ## Delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)

# checkov lives in its own uv tool environment; tests/deploy finds it there.
deploy-tools: ## Install checkov (pinned) as a uv tool, outside the workspace lock
	$(UV) tool install --quiet checkov==$(CHECKOV_VERSION)

deploy-check: deploy-tools ## Offline checks of Dockerfile, Compose and Kubernetes manifests
	$(UV) run --frozen pytest tests/deploy -m deploy

prometheus-rule: ## Regenerate the production overlay's PrometheusRule from deploy/observability/prometheus/alerts.yml
	$(UV) run --frozen python deploy/k8s/overlays/production/render_prometheus_rule.py
