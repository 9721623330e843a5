"""The order saga end to end: real processes, real broker, database and SMTP."""

import asyncio

import pytest
from shop_contract import SHOP

from tests.support.apps import wait_until
from tests.support.shop import Shop, order_body
from tests.support.system import System
from tests.support.tap import event_tap

pytestmark = pytest.mark.timeout(120)


@pytest.mark.local_processes
async def test_happy_path_confirms_moves_stock_authorizes_and_sends_two_emails(
    system: System,
) -> None:
    shop = Shop(system)
    before = await shop.stock("KEYBOARD-01")

    response = await shop.place(order_body(("KEYBOARD-01", 2), ("MOUSE-01", 1)))
    assert response.status_code == 202, response.text
    order = response.json()
    assert response.headers["Location"] == f"/orders/{order['id']}"
    assert order["status"] == "PENDING"
    assert order["total"] == "207.50"  # 2 x 89.00 + 29.50, priced by the order service

    final = await shop.wait_final(order["id"])
    assert final["status"] == "CONFIRMED"
    assert [h["status"] for h in final["history"]] == ["PENDING", "CONFIRMED"]

    payment = await shop.wait_payment(order["id"], "AUTHORIZED")
    assert payment["amount"] == "207.50"
    await shop.wait_emails(order["id"], {"received", "confirmed"})

    async def committed() -> bool:
        stock = await shop.stock("KEYBOARD-01")
        return stock == {"sku": "KEYBOARD-01", "available": before["available"] - 2, "reserved": 0}

    await wait_until(committed, timeout=15)
    emails = await shop.emails(order["id"])
    assert sorted(e["kind"] for e in emails) == ["confirmed", "received"]
    smtp = system.smtp.for_order(order["id"])
    assert sorted(m["X-Email-Kind"] for m in smtp) == ["confirmed", "received"]
    assert all(m["To"] == "buyer@example.com" for m in smtp)


async def test_out_of_stock_cancels_voids_payment_and_leaves_stock_unchanged(
    system: System,
) -> None:
    shop = Shop(system)
    await shop.set_stock("WEBCAM-01", 1)
    mouse = await shop.stock("MOUSE-01")

    order = await shop.place_ok(order_body(("WEBCAM-01", 3), ("MOUSE-01", 1)))
    final = await shop.wait_final(order["id"])

    assert final["status"] == "CANCELLED"
    assert "WEBCAM-01" in final["reason"]
    assert "MOUSE-01" not in final["reason"]
    await shop.wait_payment(order["id"], "VOIDED")
    await shop.wait_emails(order["id"], {"received", "cancelled"})
    assert await shop.stock("WEBCAM-01") == {"sku": "WEBCAM-01", "available": 1, "reserved": 0}
    assert await shop.stock("MOUSE-01") == mouse
    assert sorted(e["kind"] for e in await shop.emails(order["id"])) == ["cancelled", "received"]


async def test_declined_payment_cancels_and_releases_the_reservation(system: System) -> None:
    shop = Shop(system)
    async with event_tap(system.amqp_url) as tap:
        before = await shop.stock("HEADSET-01")
        order = await shop.place_ok(order_body(("HEADSET-01", 4), token="tok_chargeDeclined"))
        final = await shop.wait_final(order["id"])
        assert final["status"] == "CANCELLED"
        assert "declined" in final["reason"]

        payment = (await shop.payment(order["id"])).json()
        assert payment["status"] == "DECLINED"
        assert payment["reason"]
        # Whether inventory reserved before it heard of the cancellation or not,
        # the stock ends where it began.
        await shop.wait_emails(order["id"], {"received", "cancelled"})
        if "inventory.reserved" in tap.types_of(order["id"]):
            await tap.wait_for(order["id"], "inventory.released")
        assert await shop.stock("HEADSET-01") == before


async def test_gateway_timeouts_are_retried_until_the_order_confirms(system: System) -> None:
    shop = Shop(system)
    retried_before = await _payment_retries(shop)
    order = await shop.place_ok(order_body(("USB-C-HUB", 1), token="tok_gatewayTimeout"))
    # Two transient failures: retried after 1 s and 5 s.
    final = await shop.wait_final(order["id"], timeout=45)
    assert final["status"] == "CONFIRMED"
    await shop.wait_payment(order["id"], "AUTHORIZED")
    assert await _payment_retries(shop) - retried_before == 2


async def _payment_retries(shop: Shop) -> float:
    return await shop.metric(
        "payment", "events_consumed_total", type="order.created", outcome="retried"
    )


@pytest.mark.local_processes
async def test_every_event_published_twice_changes_nothing(system: System) -> None:
    shop = Shop(system)
    async with event_tap(system.amqp_url) as tap:
        order = await shop.place_ok(order_body(("MONITOR-27", 1)))
        await shop.wait_final(order["id"])
        await shop.wait_emails(order["id"], {"received", "confirmed"})
        await tap.wait_for(order["id"], "email.sent")
        await tap.wait_for(order["id"], "payment.authorized")
        await tap.wait_for(order["id"], "inventory.reserved")

        before = {
            "order": await shop.order(order["id"]),
            "stock": await shop.stock("MONITOR-27"),
            "payment": (await shop.payment(order["id"])).json(),
            "emails": await shop.emails(order["id"]),
            "smtp": len(system.smtp.for_order(order["id"])),
        }
        duplicates_before = await _duplicates(shop)
        originals = list(tap.of_order(order["id"]))
        consumed_copies = sum(1 for m in originals if m.type != "email.sent")
        for message in originals:
            await tap.republish(message)

        async def all_skipped() -> bool:
            return await _duplicates(shop) - duplicates_before >= _deliveries(originals)

        await wait_until(all_skipped, timeout=30)
        assert consumed_copies > 0
        assert await shop.order(order["id"]) == before["order"]
        assert await shop.stock("MONITOR-27") == before["stock"]
        assert (await shop.payment(order["id"])).json() == before["payment"]
        assert await shop.emails(order["id"]) == before["emails"]
        assert len(system.smtp.for_order(order["id"])) == before["smtp"]


def _deliveries(messages: list) -> int:  # type: ignore[type-arg]
    """How many service-queue deliveries republishing ``messages`` causes."""
    return sum(1 for m in messages for spec in SHOP.services if m.type in spec.consumes)


async def _duplicates(shop: Shop) -> float:
    counts = await asyncio.gather(
        *(
            shop.metric(service, "events_consumed_total", outcome="duplicate")
            for service in ("order", "inventory", "payment", "email")
        )
    )
    return sum(counts)
