"""Build a service's FastAPI app from its definition, and its command line.

Roles: ``api`` serves the service's routes (one short transaction per request;
no broker connection at all), ``worker`` runs the relay and the consumer,
``all`` does both in one process. Every role serves ``/healthz``, ``/readyz``
and ``/metrics``.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, TypeVar, get_args

import uvicorn
from events import configure_logging
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from service_kit.database import Database
from service_kit.definition import D, S, ServiceDefinition, U
from service_kit.http import (
    MAX_HEADER_BYTES,
    BodySizeLimit,
    HeaderSizeLimit,
    MethodDispatch,
    StrictJSONBodies,
    install_error_handlers,
    install_input_error_handlers,
)
from service_kit.migrations import upgrade_head
from service_kit.priority import lower_priority
from service_kit.runtime import Runtime, running
from service_kit.settings import Role
from service_kit.telemetry import configure_tracing

T = TypeVar("T")


def _runtime(request: Request) -> Runtime[object]:
    runtime: Runtime[object] = request.app.state.runtime
    return runtime


async def _database(request: Request) -> Database:  # async: no thread pool (see dependency)
    return _runtime(request).database


DatabaseDep = Annotated[Database, Depends(_database)]
"""The service's database, for routes: ``async with db.unit_of_work(SqlUnitOfWork) as uow``."""


def dependency(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A FastAPI dependency giving routes the service's typed dependencies object."""

    # async, though it awaits nothing: FastAPI runs a plain ``def`` dependency in
    # its thread pool, a thread hand-off per request for a dictionary lookup.
    async def get(request: Request) -> T:
        dependencies = _runtime(request).dependencies
        if not isinstance(dependencies, kind):
            raise TypeError(f"this app's dependencies are not a {kind.__qualname__}")
        return dependencies

    return get


def create_app(
    definition: ServiceDefinition[S, U, D], settings: S | None = None, *, role: Role = "all"
) -> FastAPI:
    resolved = settings or definition.settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(definition, resolved, role) as runtime:
            app.state.runtime = runtime
            yield

    app = FastAPI(
        title=f"{definition.name} service",
        description=definition.description,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry: a server span per request, continuing an
        # incoming traceparent. Not its spans around every dependency, endpoint
        # and serialization (four more per request, a tenth of a POST's CPU), nor
        # its OTel metrics and logs: /metrics and structlog carry those.
        telemetry={"tracing": True, "operation_spans": False, "metrics": False, "logs": False},
    )
    app.include_router(_operations_router())
    if role in ("api", "all"):
        for router in definition.routers:
            app.include_router(router)
    _document_errors(app, max_body_bytes=resolved.max_body_bytes)
    install_error_handlers(app)
    install_input_error_handlers(app)
    # Outermost last: header limit (431), methods (HEAD, OPTIONS, 405), body
    # limit (413), strict JSON (400/422), then the routes.
    app.add_middleware(StrictJSONBodies)
    app.add_middleware(BodySizeLimit, max_bytes=resolved.max_body_bytes)
    app.add_middleware(MethodDispatch)
    app.add_middleware(HeaderSizeLimit, max_bytes=MAX_HEADER_BYTES)
    return app


class ErrorMessage(BaseModel):
    """Every error but 422: what went wrong, in words."""

    detail: str = Field(examples=["request body too large (limit 65536 bytes)"])


def _document_errors(app: FastAPI, *, max_body_bytes: int) -> None:
    """Add to every operation of the app's OpenAPI the errors the shared edge answers
    (431 anywhere; 400 and 413 where there is a body; 401 and 403 where a token is
    needed), and give the error answers declared without one their body's schema.
    FastAPI documents 422 itself wherever a route takes parameters or a body."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _add_edge_errors(generate(), max_body_bytes=max_body_bytes)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _add_edge_errors(document: dict[str, Any], *, max_body_bytes: int) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorMessage"] = ErrorMessage.model_json_schema()
    edge = {"431": f"Request header fields over {MAX_HEADER_BYTES} bytes together"}
    with_body = {
        "400": "The body is not UTF-8 text",
        "413": f"The body is over {max_body_bytes} bytes",
    }
    with_token = {
        "401": "No bearer token, a bad signature, or an expired token",
        "403": "A valid token without the scope this needs",
    }
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            added = dict(edge)
            if "requestBody" in operation:
                added |= with_body
            if operation.get("security"):
                added |= with_token
            for status, description in added.items():
                responses.setdefault(status, {"description": description})
            if "requestBody" in operation and "422" in responses:
                responses["422"]["description"] = (
                    "Validation Error: each invalid field named in `loc`, including values"
                    " JSON cannot carry (a lone surrogate, NaN, Infinity, a number out of"
                    " range) and text that cannot be stored (NUL)"
                )
            for status, response in responses.items():
                if status.startswith(("4", "5")) and status != "422":
                    body = response.setdefault("content", {}).setdefault("application/json", {})
                    body.setdefault("schema", {"$ref": "#/components/schemas/ErrorMessage"})
            operation["responses"] = dict(sorted(responses.items()))


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, bool] = Field(examples=[{"database": True, "broker": True}])


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the process answers. Never depends on other systems."""
        return {"status": "ok"}

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready: see which check failed"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """Ready: database reachable; for a worker also broker, consumer and relay."""
        checks = await _runtime(request).readiness()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def main(definition: ServiceDefinition[S, U, D]) -> None:
    """``<svc>-service [serve [--role api|worker|all]] | migrate``."""
    parser = argparse.ArgumentParser(prog=f"{definition.name}-service")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the service (the default)")
    serve.add_argument("--role", choices=get_args(Role), default="all")
    commands.add_parser("migrate", help="apply the database migrations, then exit")
    args = parser.parse_args()
    command = args.command or "serve"
    role: Role = getattr(args, "role", "all")

    settings = definition.settings()
    configure_logging(service=definition.name, level=settings.log_level, fmt=settings.log_format)
    configure_tracing(definition.name)
    if command == "migrate" or settings.migrate_on_start:
        upgrade_head(definition.migrations, settings.sqlalchemy_url, definition.tables)
        if command == "migrate":
            return
    lower_priority(settings.cpu_niceness)
    uvicorn.run(
        create_app(definition, settings, role=role),
        host=settings.host,
        port=settings.port,
        log_config=None,  # our structlog handler renders uvicorn's lines too
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
        # Only used with h11: let headers up to 4x the app's limit reach the app, which
        # answers 431 with a body that says why (h11 itself would answer a bare 400).
        h11_max_incomplete_event_size=4 * MAX_HEADER_BYTES,
    )
