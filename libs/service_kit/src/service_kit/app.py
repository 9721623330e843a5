"""Build a service's FastAPI app from its definition, and its command line.

Roles: ``api`` serves the service's routes (one short transaction per request;
no broker connection at all), ``worker`` runs the relay and the consumer,
``all`` does both in one process. Every role serves ``/healthz``, ``/readyz``
and ``/metrics``.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar, get_args

import uvicorn
from events import configure_logging
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service_kit.database import Database
from service_kit.definition import D, S, ServiceDefinition, U
from service_kit.http import BodySizeLimit, TraceRequests, install_error_handlers
from service_kit.migrations import upgrade_head
from service_kit.runtime import Runtime, running
from service_kit.settings import Role
from service_kit.telemetry import configure_tracing

T = TypeVar("T")


def _runtime(request: Request) -> Runtime[object]:
    runtime: Runtime[object] = request.app.state.runtime
    return runtime


def _database(request: Request) -> Database:
    return _runtime(request).database


DatabaseDep = Annotated[Database, Depends(_database)]
"""The service's database, for routes: ``async with db.unit_of_work(SqlUnitOfWork) as uow``."""


def dependency(kind: type[T]) -> Callable[[Request], T]:
    """A FastAPI dependency giving routes the service's typed dependencies object."""

    def get(request: Request) -> T:
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
    )
    app.include_router(_operations_router())
    if role in ("api", "all"):
        for router in definition.routers:
            app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=resolved.max_body_bytes)
    app.add_middleware(TraceRequests)
    return app


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the process answers. Never depends on other systems."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Ready: database reachable; for a worker also broker, consumer and relay."""
        checks = await _runtime(request).readiness()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics")
    async def metrics() -> Response:
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
    uvicorn.run(
        create_app(definition, settings, role=role),
        host=settings.host,
        port=settings.port,
        log_config=None,  # our structlog handler renders uvicorn's lines too
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
    )
