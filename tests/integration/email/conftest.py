from collections.abc import AsyncIterator, Iterator

import pytest
from email_service.adapters.mail import SmtpMailSender
from email_service.handlers import EmailHandlers
from email_service.service import SERVICE
from email_service.settings import Settings
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from tests.conftest import NewDatabase
from tests.integration.email.support import SmtpSink, smtp_sink
from tests.support.apps import migrate

SENDER = "Shop <orders@shop.example>"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as running:
        yield running


@pytest.fixture
async def database(new_database: NewDatabase) -> str:
    """DSN of a fresh database with the email service's migrations applied."""
    dsn = await new_database("email")
    await migrate(SERVICE, Settings(database_url=dsn))
    return dsn


@pytest.fixture
async def sessions(database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(Settings(database_url=database).sqlalchemy_url)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
def handlers(sink: SmtpSink) -> EmailHandlers:
    return EmailHandlers(
        sender=SmtpMailSender(host=sink.host, port=sink.port, timeout=5), from_address=SENDER
    )
