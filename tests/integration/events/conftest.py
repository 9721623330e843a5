from collections.abc import AsyncIterator

import pytest
from events import ConsumerQueue
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import NewDatabase
from tests.integration.events.support import delete_topology, make_engine, queue_spec


@pytest.fixture
async def sessions(new_database: NewDatabase) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = await make_engine(await new_database("events"))
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
async def spec(unique: str, amqp_url: str) -> AsyncIterator[ConsumerQueue]:
    spec = queue_spec(unique)
    yield spec
    await delete_topology(amqp_url, spec)
