"""The whole service on a real broker: order.created in, retries, payment.authorized out."""

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from events import Envelope
from payment_service.service import SERVICE
from shop_contract.testing import order_created

from tests.conftest import NewDatabase
from tests.support.accounts import ShopBroker, publish_as_owner
from tests.support.apps import running_app, wait_until
from tests.support.tokens import sealer


@pytest.fixture
async def channel(shop_broker: ShopBroker) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(shop_broker.vhost_url)  # an observer's tap
    async with connection:
        yield await connection.channel(publisher_confirms=True)


@pytest.mark.timeout(30)
async def test_a_flaky_gateway_is_retried_through_the_retry_queues_until_authorized(
    new_database: NewDatabase, shop_broker: ShopBroker, channel: AbstractChannel
) -> None:
    settings = SERVICE.settings(
        database_url=await new_database("payment"),
        amqp_url=shop_broker.url("payment"),
        broker_user_prefix=shop_broker.prefix,
        migrate_on_start=False,
    )
    event = order_created(sealer=sealer(), token="tok_gatewayTimeout", total=Decimal("25.00"))
    async with running_app(SERVICE, settings) as (_, client):
        exchange = await channel.get_exchange("events")  # declared by the running service
        outcomes = await channel.declare_queue(exclusive=True)
        await outcomes.bind(exchange, routing_key="payment.*")
        started = asyncio.get_running_loop().time()

        await publish_as_owner(shop_broker, event)

        async def authorized() -> bool:
            answer = await client.get(f"/payments/{event.order_id}")
            return answer.status_code == 200 and answer.json()["status"] == "AUTHORIZED"

        await wait_until(authorized, timeout=20, interval=0.2)
        # Two failures, retried after 1 s and then 5 s: the retry queues' delays.
        assert asyncio.get_running_loop().time() - started >= 5.5

        received: list[AbstractIncomingMessage] = []

        async def payment_event_published() -> bool:
            message = await outcomes.get(no_ack=True, fail=False)
            if message is not None:
                received.append(message)
            return bool(received)

        await wait_until(payment_event_published, timeout=10)
        [published] = received
        assert published.routing_key == "payment.authorized"
        envelope = Envelope.from_body(published.body)
        assert envelope.data["order_id"] == str(event.order_id)
        assert envelope.data["amount"] == "25.00"
        assert envelope.correlation_id == str(event.order_id)
