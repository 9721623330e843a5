from collections.abc import AsyncIterator

import pytest
from payment_service.adapters.sandbox_gateway import SandboxGateway
from payment_service.handlers import PaymentHandlers
from payment_service.service import SERVICE
from payment_service.settings import Settings
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tests.conftest import NewDatabase
from tests.integration.payment.support import Sessions
from tests.support.apps import migrate


@pytest.fixture
async def database(new_database: NewDatabase) -> str:
    """DSN of a fresh database with the payment service's migrations applied."""
    dsn = await new_database("payment")
    await migrate(SERVICE, Settings(database_url=dsn))
    return dsn


@pytest.fixture
async def sessions(database: str) -> AsyncIterator[Sessions]:
    engine = create_async_engine(
        Settings(database_url=database).sqlalchemy_url, pool_size=10, max_overflow=20
    )
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
def sandbox() -> SandboxGateway:
    return SandboxGateway()


@pytest.fixture
def handlers(sandbox: SandboxGateway) -> PaymentHandlers:
    return PaymentHandlers(sandbox)
