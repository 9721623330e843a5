"""Run a service's real FastAPI app (real lifespan: database, broker, relay,
consumers) in-process, and talk to it over HTTP through httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from service_kit import Role, ServiceDefinition, ServiceSettings, create_app, upgrade_head
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from tests.support.tokens import ShopAuth, keys

AnyService = ServiceDefinition[Any, Any, Any]


async def migrate(definition: AnyService, settings: ServiceSettings) -> None:
    # Alembic runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(upgrade_head, Path(definition.migrations), settings.sqlalchemy_url)


async def migrated_database(
    definition: AnyService, new_database: Callable[[str], Awaitable[str]]
) -> str:
    """DSN of a fresh database with ``definition``'s migrations applied."""
    dsn = await new_database(definition.name)
    await migrate(definition, definition.settings(database_url=dsn))
    return dsn


@asynccontextmanager
async def sessions_on(
    definition: AnyService, dsn: str, *, pool_size: int = 10, max_overflow: int = 10
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a service's database, as its handlers get them."""
    url = definition.settings(database_url=dsn).sqlalchemy_url
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


@asynccontextmanager
async def running_app(
    definition: AnyService,
    settings: ServiceSettings,
    *,
    role: Role = "all",
    ready_timeout: float = 15,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Migrate, start the app's lifespan, wait for /readyz, yield (app, client).

    The client acts as whoever a request needs (``tests.support.tokens.ShopAuth``)."""
    await migrate(definition, settings)
    app = create_app(definition, with_test_keys(settings), role=role)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", auth=ShopAuth()
        ) as client:
            await wait_until(lambda: _ready(client), timeout=ready_timeout)
            yield app, client


S = TypeVar("S", bound=ServiceSettings)


def with_test_keys(settings: S) -> S:
    """The run's keys, wherever the settings have a place for one and none was given."""
    given = {
        "auth_public_key": keys().verifying,
        "payment_public_key": keys().sealing_public,
        "payment_private_key": keys().sealing_private,
    }
    fields = type(settings).model_fields
    updates = {k: v for k, v in given.items() if k in fields and getattr(settings, k) is None}
    return settings.model_copy(update=updates)


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
