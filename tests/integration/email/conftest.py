from collections.abc import AsyncIterator, Iterator

import pytest
from email_service.adapters.mail import SmtpMailSender
from email_service.dependencies import Dependencies
from email_service.service import SERVICE
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import NewDatabase
from tests.integration.email.support import SmtpSink, smtp_sink
from tests.support.apps import migrated_database, sessions_on

SENDER = "Shop <orders@shop.example>"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as running:
        yield running


@pytest.fixture
async def database(new_database: NewDatabase) -> str:
    """DSN of a fresh database with the email service's migrations applied."""
    return await migrated_database(SERVICE, new_database)


@pytest.fixture
async def sessions(database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with sessions_on(SERVICE, database, pool_size=5, max_overflow=10) as made:
        yield made


@pytest.fixture
async def dependencies(sink: SmtpSink) -> AsyncIterator[Dependencies]:
    """What the running service hands its handlers, sending to ``sink``."""
    sender = SmtpMailSender(host=sink.host, port=sink.port, timeout=5)
    try:
        yield Dependencies(mail=sender, from_address=SENDER)
    finally:
        await sender.aclose()
