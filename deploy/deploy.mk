# Deployment targets, included by the root Makefile (`include deploy/deploy.mk`).
# Paths are relative to the repository root, where make runs.
#
#   cp .env.example .env && make up      # whole system in Docker Compose
#   make kind-up kind-load kind-deploy kind-e2e kind-down
#   make deploy-check                    # offline checks of all of the above
#   make test-compose                    # the Compose stack for real (engine installed if missing)

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

.PHONY: up down logs test-compose kind-up kind-load kind-deploy kind-e2e kind-down deploy-tools deploy-check

up: ## Whole system in Docker Compose (needs .env: cp .env.example .env)
	@test -f .env || { echo "No .env file: run 'cp .env.example .env' first (dev-only values)." >&2; exit 1; }
	$(COMPOSE) up -d --build --wait

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

# A Job's pod template is immutable, so the (idempotent) setup Job is replaced on
# every deploy. Migrations wait for it inside their init containers.
kind-deploy: ## Apply the kind overlay and wait until everything is ready
	$(SHOP_KUBECTL) delete job setup --ignore-not-found --wait=true
	$(KUBECTL) --context kind-$(KIND_CLUSTER) apply -k $(KIND_OVERLAY)
	$(SHOP_KUBECTL) rollout status statefulset/rabbitmq --timeout=5m
	$(SHOP_KUBECTL) rollout status statefulset/postgres --timeout=5m
	$(SHOP_KUBECTL) wait --for=condition=complete job/setup --timeout=10m
	$(foreach d,mailpit $(foreach s,$(SHOP_SERVICE_PORTS),$(call shop_svc,$(s))),$(SHOP_KUBECTL) rollout status deployment/$(d) --timeout=5m &&) true

# The order API is a NodePort; the other APIs and the broker (for the event tap)
# are reached through port-forwards that end with the recipe.
kind-e2e: ## End-to-end tests against the kind deployment (localhost:8000)
	@set -e; trap 'kill $$(jobs -p) 2>/dev/null' EXIT; \
	for target in svc/inventory:18001:8001 svc/payment:18002:8002 svc/email:18003:8003 svc/rabbitmq:15673:5672; do \
		IFS=: read -r name local remote <<< "$$target"; \
		$(SHOP_KUBECTL) port-forward "$$name" "$$local:$$remote" >/dev/null & \
	done; \
	secret=$$($(SHOP_KUBECTL) get secrets -o name | grep '/infra-credentials'); \
	admin=$$($(SHOP_KUBECTL) get "$$secret" -o jsonpath='{.data.RABBITMQ_ADMIN_USER}' | base64 -d); \
	password=$$($(SHOP_KUBECTL) get "$$secret" -o jsonpath='{.data.RABBITMQ_ADMIN_PASSWORD}' | base64 -d); \
	sleep 3; \
	E2E_TARGET=external ORDER_URL=http://localhost:8000 INVENTORY_URL=http://localhost:18001 \
	PAYMENT_URL=http://localhost:18002 EMAIL_URL=http://localhost:18003 \
	AMQP_URL="amqp://$$admin:$$password@localhost:15673/" \
	$(UV) run --frozen pytest tests/e2e -m "not local_processes"

kind-down: ## Delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)

# checkov lives in its own uv tool environment; tests/deploy finds it there.
deploy-tools: ## Install checkov (pinned) as a uv tool, outside the workspace lock
	$(UV) tool install --quiet checkov==$(CHECKOV_VERSION)

deploy-check: deploy-tools ## Offline checks of Dockerfile, Compose and Kubernetes manifests
	$(UV) run --frozen pytest tests/deploy -m deploy
