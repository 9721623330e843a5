from collections.abc import AsyncIterator

import pytest
from inventory_service.service import SERVICE
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import NewDatabase
from tests.support.apps import migrated_database, sessions_on

# Enough connections for the widest concurrency test, so every handler is in flight at once.
POOL_SIZE = 40


@pytest.fixture
async def database(new_database: NewDatabase) -> str:
    """DSN of a fresh database migrated to head (so seeded with the catalogue's stock)."""
    return await migrated_database(SERVICE, new_database)


@pytest.fixture
async def sessions(database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with sessions_on(SERVICE, database, pool_size=POOL_SIZE, max_overflow=0) as made:
        yield made
