"""Build a service's FastAPI app from its definition, and its command line.

A service module declares *what* it is (routers, handlers, migrations); this
module owns *how* it runs: lifespan, health, metrics, limits, errors, CLI.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import uvicorn
from events.logs import configure_logging
from events.topology import ConsumerQueue
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.http import BodySizeLimit, TraceRequests, install_error_handlers
from service_kit.migrations import upgrade_head
from service_kit.runtime import HandlersFactory, Hook, Runtime, start_runtime, stop_runtime
from service_kit.settings import ServiceSettings
from service_kit.telemetry import configure_tracing


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    settings_type: type[ServiceSettings]
    migrations: Path
    routers: Sequence[APIRouter] = ()
    handlers: HandlersFactory | None = None
    queue: ConsumerQueue | None = None
    on_start: Hook | None = None
    on_stop: Hook | None = None
    description: str = ""


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_runtime(request).sessions() as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]


def create_app(definition: ServiceDefinition, settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or definition.settings_type()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start_runtime(
            name=definition.name,
            settings=settings,
            handlers=definition.handlers,
            queue=definition.queue,
            on_start=definition.on_start,
        )
        app.state.runtime = runtime
        try:
            yield
        finally:
            await stop_runtime(runtime, definition.on_stop)

    app = FastAPI(
        title=f"{definition.name} service",
        description=definition.description,
        lifespan=lifespan,
    )
    app.include_router(_operations_router())
    for router in definition.routers:
        app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(TraceRequests)
    return app


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the process answers. Never depends on other systems."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(runtime: RuntimeDep) -> JSONResponse:
        """Ready: database and broker reachable, consumers registered, relay running."""
        checks = {
            "database": await runtime.database_ready(),
            "broker": runtime.broker.is_ready,
            "consumers": runtime.consuming,
            "outbox_relay": runtime.relaying,
        }
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def main(definition: ServiceDefinition) -> None:
    """``<svc>-service serve`` (default) or ``<svc>-service migrate``."""
    parser = argparse.ArgumentParser(prog=f"{definition.name}-service")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args()
    settings = definition.settings_type()
    configure_logging(service=definition.name, level=settings.log_level, fmt=settings.log_format)
    configure_tracing(definition.name)

    if args.command == "migrate" or settings.migrate_on_start:
        upgrade_head(definition.migrations, settings.sqlalchemy_url)
        if args.command == "migrate":
            return
    uvicorn.run(
        create_app(definition, settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # our structlog handler renders uvicorn's lines too
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
    )
