from collections.abc import AsyncIterator
from typing import Any

import pytest
from events import Handler
from payment_service.adapters.sandbox_gateway import SandboxGateway
from payment_service.dependencies import Dependencies
from payment_service.service import SERVICE
from shop_contract import OrderCancelled, OrderCreated

from tests.conftest import NewDatabase
from tests.integration.payment.support import Sessions
from tests.support.apps import migrated_database, sessions_on
from tests.support.tokens import opener


@pytest.fixture
async def database(new_database: NewDatabase) -> str:
    """DSN of a fresh database with the payment service's migrations applied."""
    return await migrated_database(SERVICE, new_database)


@pytest.fixture
async def sessions(database: str) -> AsyncIterator[Sessions]:
    async with sessions_on(SERVICE, database, pool_size=10, max_overflow=20) as made:
        yield made


@pytest.fixture
def sandbox() -> SandboxGateway:
    return SandboxGateway()


@pytest.fixture
def dependencies(sandbox: SandboxGateway) -> Dependencies:
    return Dependencies(gateway=sandbox, payment_tokens=opener())


@pytest.fixture
def on_created(dependencies: Dependencies) -> Handler[Any]:
    """The service's order.created handler, as its consumer runs it."""
    return SERVICE.handler_for(OrderCreated, dependencies)


@pytest.fixture
def on_cancelled(dependencies: Dependencies) -> Handler[Any]:
    """The service's order.cancelled handler, as its consumer runs it."""
    return SERVICE.handler_for(OrderCancelled, dependencies)
