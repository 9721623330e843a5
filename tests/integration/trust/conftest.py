from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

import httpx
import pytest
from email_service.service import SERVICE as EMAIL
from inventory_service.service import SERVICE as INVENTORY
from order_service.service import SERVICE as ORDER
from payment_service.service import SERVICE as PAYMENT

from tests.conftest import NewDatabase
from tests.integration.email.support import SmtpSink, smtp_sink
from tests.support.accounts import ShopBroker
from tests.support.apps import AnyService, running_app


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as running:
        yield running


@pytest.fixture
async def apps(
    new_database: NewDatabase, shop_broker: ShopBroker, sink: SmtpSink
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The four services, each as its own broker user, on one vhost, over HTTP."""
    async with AsyncExitStack() as stack:
        clients = {}
        services: tuple[AnyService, ...] = (ORDER, INVENTORY, PAYMENT, EMAIL)
        for service in services:
            settings = service.settings(
                database_url=await new_database(service.name),
                amqp_url=shop_broker.url(service.name),
                broker_user_prefix=shop_broker.prefix,
                migrate_on_start=False,
                **({"smtp_host": sink.host, "smtp_port": sink.port} if service is EMAIL else {}),
            )
            _, clients[service.name] = await stack.enter_async_context(
                running_app(service, settings)
            )
        yield clients
