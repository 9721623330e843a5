"""The app's own consumer, fed over the broker: outcomes in, decision out, bad ones to the DLQ."""

from __future__ import annotations

import uuid
from decimal import Decimal

import aio_pika
import httpx
from events import Envelope, InventoryReserved, OutboundMessage, PaymentAuthorized, StockLine
from events.publisher import to_amqp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.order.support import order_body, outbox_rows
from tests.support.apps import wait_until


async def publish(vhost_url: str, *events: InventoryReserved | PaymentAuthorized) -> None:
    connection = await aio_pika.connect(vhost_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("events")
        for event in events:
            message = OutboundMessage.from_envelope(Envelope.wrap(event))
            await exchange.publish(to_amqp(message), message.routing_key, mandatory=True)


async def test_outcomes_over_the_broker_confirm_the_order(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], vhost_url: str
) -> None:
    receipt = (await client.post("/orders", json=order_body())).json()
    order_id = uuid.UUID(receipt["id"])
    await publish(
        vhost_url,
        PaymentAuthorized(
            order_id=order_id, amount=Decimal("217.90"), currency="EUR", authorization_id="a-1"
        ),
        InventoryReserved(order_id=order_id, items=(StockLine(sku="KEYBOARD-01", quantity=2),)),
    )

    async def confirmed() -> bool:
        order = (await client.get(f"/orders/{order_id}")).json()
        return bool(order["status"] == "CONFIRMED")

    await wait_until(confirmed, timeout=15)
    order = (await client.get(f"/orders/{order_id}")).json()
    assert [h["status"] for h in order["history"]] == ["PENDING", "CONFIRMED"]
    # The consumer handles deliveries concurrently: either answer may come last.
    assert order["history"][1]["event_type"] in {"inventory.reserved", "payment.authorized"}
    assert len(await outbox_rows(sessions, "order.confirmed")) == 1


async def test_an_outcome_for_an_unknown_order_is_dead_lettered(
    client: httpx.AsyncClient, vhost_url: str
) -> None:
    await publish(vhost_url, InventoryReserved(order_id=uuid.uuid4(), items=()))

    async def dead_lettered() -> bool:
        connection = await aio_pika.connect(vhost_url)
        async with connection:
            channel = await connection.channel()
            dlq = await channel.declare_queue("order.events.dlq", passive=True)
            return bool(dlq.declaration_result.message_count)

    await wait_until(dead_lettered, timeout=15)
