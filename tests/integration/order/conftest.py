from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from order_service.service import SERVICE
from order_service.settings import Settings
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import NewDatabase
from tests.support.accounts import ShopBroker
from tests.support.apps import migrate, running_app, sessions_on


@pytest.fixture
async def order_dsn(new_database: NewDatabase) -> str:
    return await new_database("order")


@pytest.fixture
def settings(order_dsn: str, shop_broker: ShopBroker) -> Settings:
    return Settings(
        database_url=order_dsn,
        amqp_url=shop_broker.url("order"),
        broker_user_prefix=shop_broker.prefix,
        migrate_on_start=False,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (lifespan, database, broker vhost), spoken to over HTTP."""
    async with running_app(SERVICE, settings) as (_, client):
        yield client


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a migrated order database (the app itself need not run)."""
    await migrate(SERVICE, settings)
    async with sessions_on(SERVICE, settings.database_url) as made:
        yield made
