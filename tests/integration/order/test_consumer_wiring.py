"""The app's own consumer, fed over the broker: outcomes in, decision out, bad ones to the DLQ."""

from __future__ import annotations

import uuid

import aio_pika
import httpx
from shop_contract.testing import inventory_reserved, line, payment_authorized
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.order.support import emitted, order_body
from tests.support.accounts import ShopBroker, publish_as_owner
from tests.support.apps import wait_until


async def test_outcomes_over_the_broker_confirm_the_order(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], shop_broker: ShopBroker
) -> None:
    receipt = (await client.post("/orders", json=order_body())).json()
    order_id = uuid.UUID(receipt["id"])
    await publish_as_owner(
        shop_broker,
        payment_authorized(order_id, amount="217.90", authorization_id="a-1"),
        inventory_reserved(order_id, items=[line("KEYBOARD-01", 2)]),
    )

    async def confirmed() -> bool:
        order = (await client.get(f"/orders/{order_id}")).json()
        return bool(order["status"] == "CONFIRMED")

    await wait_until(confirmed, timeout=15)
    order = (await client.get(f"/orders/{order_id}")).json()
    assert [h["status"] for h in order["history"]] == ["PENDING", "CONFIRMED"]
    # The consumer handles deliveries concurrently: either answer may come last.
    assert order["history"][1]["event_type"] in {"inventory.reserved", "payment.authorized"}
    assert len(await emitted(sessions, "order.confirmed")) == 1


async def test_an_outcome_for_an_unknown_order_is_dead_lettered(
    client: httpx.AsyncClient, shop_broker: ShopBroker, vhost_url: str
) -> None:
    await publish_as_owner(shop_broker, inventory_reserved(uuid.uuid4(), items=()))

    async def dead_lettered() -> bool:
        connection = await aio_pika.connect(vhost_url)
        async with connection:
            channel = await connection.channel()
            dlq = await channel.declare_queue("order.events.dlq", passive=True)
            return bool(dlq.declaration_result.message_count)

    await wait_until(dead_lettered, timeout=15)
