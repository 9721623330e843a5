# One image per workspace package:
#   docker build --build-arg PACKAGE=order-service --build-arg PORT=8000 -t shop/order-service:dev .
#   docker build --build-arg PACKAGE=shopctl --target tool -t shop/shopctl:dev .
# PACKAGE: order-service | inventory-service | payment-service | email-service | shopctl
#
# Behind a TLS-intercepting proxy, give the build a CA bundle that trusts it (the
# system's roots plus the proxy's) as a BuildKit secret; it is mounted only while
# uv is installed and dependencies are downloaded, never stored in a layer:
#   docker build --secret id=build_ca,src=/etc/ssl/certs/ca-certificates.crt ...
# (docker compose passes SHOP_BUILD_CA_BUNDLE the same way). Without the secret the
# image's own CA certificates are used.
#
# No `# syntax=` line: the Dockerfile frontend built into BuildKit is used, so the
# build needs no image besides the base one.
#
# Builder and runtime share one base image so the venv's interpreter path
# (/usr/local/bin/python3.11) is identical in both.

FROM python:3.11.14-slim-bookworm AS python-base

# Only the dependency manifests, with their directory layout, so the layer that
# installs third-party dependencies is rebuilt only when a manifest or the lock changes.
FROM python-base AS manifests
WORKDIR /src
COPY . .
RUN mkdir /out \
    && find . -name pyproject.toml -not -path './.venv/*' -exec cp --parents {} /out/ \; \
    && cp uv.lock /out/

FROM python-base AS builder
# Same uv release that wrote uv.lock, from PyPI (the registry the dependencies come
# from anyway), before ARG PACKAGE so all five builds share this layer.
RUN --mount=type=secret,id=build_ca \
    if [ -s /run/secrets/build_ca ]; then export PIP_CERT=/run/secrets/build_ca; fi \
    && pip install --no-cache-dir --root-user-action=ignore --disable-pip-version-check \
       "uv==0.13.9" \
    && uv --version
ARG PACKAGE
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
RUN test -n "${PACKAGE}" || { echo 'build with --build-arg PACKAGE=<package>' >&2; exit 1; }

COPY --from=manifests /out/ ./
# uv reads extra roots from SSL_CERT_FILE; the variable lives only in this RUN.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=build_ca \
    if [ -s /run/secrets/build_ca ]; then export SSL_CERT_FILE=/run/secrets/build_ca; fi \
    && uv sync --frozen --no-dev --no-install-workspace --package "${PACKAGE}"

COPY libs ./libs
COPY services ./services
COPY tools ./tools
# --no-editable installs the workspace packages into the venv as wheels, so
# the runtime image needs no source tree.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=build_ca \
    if [ -s /run/secrets/build_ca ]; then export SSL_CERT_FILE=/run/secrets/build_ca; fi \
    && uv sync --frozen --no-dev --no-editable --package "${PACKAGE}" \
    && test -x "/app/.venv/bin/${PACKAGE}"

FROM python-base AS runtime
ARG PACKAGE
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin app
# Root-owned, not writable by the app user; bytecode was compiled at build time.
COPY --from=builder /app/.venv /app/.venv
# Exec-form ENTRYPOINT cannot expand ARGs, so the console script gets a fixed name.
RUN ln -s "/app/.venv/bin/${PACKAGE}" /usr/local/bin/app-entrypoint
ENV PATH=/app/.venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    LOG_FORMAT=json \
    APP_PACKAGE=${PACKAGE}
LABEL org.opencontainers.image.title="shop ${PACKAGE}" \
      org.opencontainers.image.description="Event-driven order system: ${PACKAGE}"
WORKDIR /tmp
USER 10001:10001
ENTRYPOINT ["app-entrypoint"]

# shopctl: one-shot administration tool, nothing to health-check.
FROM runtime AS tool
CMD ["setup"]

# Default target: an HTTP service (serve) that also runs its own migrations (migrate).
FROM runtime AS service
ARG PACKAGE
ARG PORT=8000
RUN case "${PACKAGE}" in *-service) ;; *) echo "${PACKAGE} is not a service; build it with --target tool" >&2; exit 1 ;; esac
# service-kit binds 127.0.0.1 by default, unreachable from outside the container.
ENV HOST=0.0.0.0 \
    PORT=${PORT} \
    MIGRATE_ON_START=false
EXPOSE ${PORT}
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["serve"]
