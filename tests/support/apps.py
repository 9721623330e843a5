"""Run a service's real FastAPI app (real lifespan: database, broker, relay,
consumers) in-process, and talk to it over HTTP through httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from service_kit import ServiceDefinition, ServiceSettings, create_app, upgrade_head


async def migrate(definition: ServiceDefinition, settings: ServiceSettings) -> None:
    # Alembic runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(upgrade_head, Path(definition.migrations), settings.sqlalchemy_url)


@asynccontextmanager
async def running_app(
    definition: ServiceDefinition, settings: ServiceSettings, *, ready_timeout: float = 15
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Migrate, start the app's lifespan, wait for /readyz, yield (app, client)."""
    await migrate(definition, settings)
    app = create_app(definition, settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await wait_until(lambda: _ready(client), timeout=ready_timeout)
            yield app, client


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def wait_until(
    predicate: Callable[[], Awaitable[object]], *, timeout: float = 10.0, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until truthy; a clear AssertionError when time runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
