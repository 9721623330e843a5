from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from email_service.adapters.mail import SmtpMailSender
from email_service.dependencies import Dependencies
from email_service.service import SERVICE
from service_kit import Database
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import NewDatabase
from tests.integration.email.support import SmtpSink, smtp_sink
from tests.support.apps import migrated_database, sessions_on

SENDER = "Shop <orders@shop.example>"
SMTP_TIMEOUT = 5.0
# As the service derives it: three times the SMTP timeout.
CLAIM_LEASE = timedelta(seconds=3 * SMTP_TIMEOUT)


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
    """Sessions for the handler's own transactions (as the consumer opens them).

    A pool apart from ``service_database``: tests run more deliveries at once than
    the service's consumer would, and must not wait on its pool budget (one test
    checks that budget on purpose)."""
    async with sessions_on(SERVICE, database, pool_size=5, max_overflow=10) as made:
        yield made


@pytest.fixture
async def service_database(database: str) -> AsyncIterator[Database]:
    """The service's own pool, which its short claim and mark transactions use."""
    pool = Database(SERVICE.settings(database_url=database).sqlalchemy_url, pool_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def dependencies(sink: SmtpSink, service_database: Database) -> AsyncIterator[Dependencies]:
    """What the running service hands its handlers, sending to ``sink``."""
    sender = SmtpMailSender(host=sink.host, port=sink.port, timeout=SMTP_TIMEOUT)
    try:
        yield Dependencies(
            mail=sender,
            from_address=SENDER,
            database=service_database,
            claim_lease=CLAIM_LEASE,
        )
    finally:
        await sender.aclose()
