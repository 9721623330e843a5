"""Eventual consistency, idempotent requests and contention, end to end."""

import asyncio
from collections import Counter

import pytest

from tests.support.apps import wait_until
from tests.support.shop import Shop, order_body
from tests.support.system import System

pytestmark = pytest.mark.timeout(180)


@pytest.mark.local_processes
async def test_orders_placed_while_a_consumer_is_down_all_complete_after_it_returns(
    system: System,
) -> None:
    shop = Shop(system)
    await system.stop("payment")
    orders = [await shop.place_ok(order_body(("MOUSE-01", 1))) for _ in range(10)]
    # Without payment nothing can finish; the events wait in payment.events.
    statuses = [(await shop.order(o["id"]))["status"] for o in orders]
    assert set(statuses) == {"PENDING"}

    await system.start("payment")
    finals = [await shop.wait_final(o["id"], timeout=60) for o in orders]
    assert {f["status"] for f in finals} == {"CONFIRMED"}
    for order in orders:
        await shop.wait_emails(order["id"], {"received", "confirmed"})


async def test_idempotency_key_replays_the_same_order_and_rejects_another_body(
    system: System,
) -> None:
    shop = Shop(system)
    created_before = await _created(shop)
    body = order_body(("HEADSET-01", 1))
    first = await shop.place(body, key="e2e-key-1")
    again = await shop.place(body, key="e2e-key-1")
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Location"] == first.headers["Location"]

    other = await shop.place(
        {**body, "items": [{"sku": "HEADSET-01", "quantity": 2}]}, key="e2e-key-1"
    )
    assert other.status_code == 409

    await shop.wait_final(first.json()["id"])
    assert await _created(shop) - created_before == 1, "a replay publishes no second event"


async def _created(shop: Shop) -> float:
    return await shop.metric("order", "events_published_total", type="order.created")


async def test_hundred_concurrent_orders_never_oversell(system: System) -> None:
    shop = Shop(system)
    stock = 37
    await shop.set_stock("MONITOR-27", stock)

    responses = await asyncio.gather(
        *(shop.place(order_body(("MONITOR-27", 1))) for _ in range(100))
    )
    assert [r.status_code for r in responses] == [202] * 100
    finals = [await shop.wait_final(r.json()["id"], timeout=90) for r in responses]

    statuses = Counter(f["status"] for f in finals)
    assert statuses["CONFIRMED"] == stock
    assert statuses["CANCELLED"] == 100 - stock

    async def settled() -> bool:
        return await shop.stock("MONITOR-27") == {
            "sku": "MONITOR-27",
            "available": 0,
            "reserved": 0,
        }

    await wait_until(settled, timeout=30)
