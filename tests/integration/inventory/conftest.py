from collections.abc import AsyncIterator

import pytest
from inventory_service.service import SERVICE
from inventory_service.settings import Settings
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from tests.conftest import NewDatabase
from tests.support.apps import migrate

# Enough connections for the widest concurrency test, so every handler is in flight at once.
POOL_SIZE = 40


@pytest.fixture
async def database(new_database: NewDatabase) -> str:
    """DSN of a fresh database migrated to head (so seeded with the catalogue's stock)."""
    dsn = await new_database("inventory")
    await migrate(SERVICE, Settings(database_url=dsn))
    return dsn


@pytest.fixture
async def sessions(database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(
        Settings(database_url=database).sqlalchemy_url, pool_size=POOL_SIZE, max_overflow=0
    )
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()
