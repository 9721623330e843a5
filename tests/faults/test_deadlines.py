"""Nothing stays PENDING: whatever is stuck, an order is final by its deadline.

The deadline is shortened for the scenario (ORDER_DEADLINE_SECONDS); the checker
then proves the usual invariants over the cancelled orders: stock released,
no authorization kept, both emails, every event accounted for.
"""

from __future__ import annotations

import time
from collections import Counter

import asyncpg
import pytest

from tests.faults.conftest import StartSystem
from tests.faults.measured import measured
from tests.faults.scenario import Scenario, restart
from tests.support.apps import wait_until
from tests.support.shop import Shop, order_body

DEADLINE = "deadline exceeded"


async def _all(shop: Shop, order_ids: list[str], status: str, reason: str | None) -> bool:
    """Every order has ``status`` (and ``reason``, unless None: any reason)."""
    for order_id in order_ids:
        order = await shop.order(order_id)
        if order["status"] != status or reason not in (None, order["reason"]):
            return False
    return True


@pytest.mark.timeout(180)
async def test_payment_down_past_the_deadline_cancels_everything_and_keeps_no_hold(
    start_system: StartSystem, databases: dict[str, str], vhost_url: str
) -> None:
    deadline = 8.0
    async with start_system(extra_env={"ORDER_DEADLINE_SECONDS": str(deadline)}) as system:
        sc = await Scenario.begin(
            "payment down past the deadline", system, databases, vhost_url, orders=30, rate=10
        )
        await system.stop("payment")
        started = time.monotonic()
        sc.load.start()
        await sc.load.finish()
        order_ids = sc.load.order_ids()
        ids = list(order_ids)

        # Nobody answers for payment: at the deadline every order is cancelled (those
        # inventory refused, at once), its stock released (inventory hears order.cancelled).
        await wait_until(lambda: _all(sc.shop, ids, "CANCELLED", None), timeout=60)
        cancelled_after = time.monotonic() - started
        reasons = Counter([(await sc.shop.order(o))["reason"] for o in ids])
        assert reasons[DEADLINE] >= len(ids) // 2, reasons
        for sku, initial in sc.stock.items():
            stock = await sc.shop.stock(sku)
            assert (stock["available"], stock["reserved"]) == (initial, 0), stock

        # Payment comes back to a queue of order.created and order.cancelled: late
        # authorizations are voided; nothing stays authorized.
        await restart(system, "payment")
        report = await sc.check(since=time.monotonic(), deadline_may_cancel=True)
        statuses = {(await sc.shop.payment(o)).json().get("status") for o in ids}
        assert "AUTHORIZED" not in statuses, statuses
        sc.notes["all_cancelled_after"] = f"{cancelled_after:.1f}s (deadline {deadline:g}s)"
        measured(
            f"  payment down past the deadline: {len(ids)} orders cancelled ({dict(reasons)})"
            f" {cancelled_after:.1f}s after the first was placed (deadline {deadline:g}s);"
            f" payments after payment came back: {sorted(s or 'none' for s in statuses)}"
        )
        assert report.orders == len(ids)


@pytest.mark.timeout(180)
async def test_an_outcome_dead_lettered_is_cancelled_at_the_deadline(
    start_system: StartSystem, databases: dict[str, str], vhost_url: str
) -> None:
    """The order service cannot record one order's payment answer (its update is
    refused by a trigger the test adds): after the retries (1 s + 5 s + 30 s) the
    answer is a dead letter. Before, the order then stayed PENDING with its stock
    reserved and its card authorized until someone replayed it by hand."""
    deadline = 50.0
    victim = "victim-" + str(int(time.time()))
    admin = await asyncpg.connect(databases["order"])
    try:
        await admin.execute(
            """
            CREATE FUNCTION refuse_payment_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.customer_id LIKE 'victim-%'
                 AND NEW.payment_outcome IS DISTINCT FROM OLD.payment_outcome THEN
                RAISE EXCEPTION 'the test refuses this order''s payment answer';
              END IF;
              RETURN NEW;
            END $$
            """
        )
    finally:
        await admin.close()
    extra_env = {"ORDER_DEADLINE_SECONDS": str(deadline)}
    async with start_system(extra_env=extra_env) as system:
        # After the service's migrations made the table.
        admin = await asyncpg.connect(databases["order"])
        try:
            await admin.execute(
                "CREATE TRIGGER refuse_payment_outcome BEFORE UPDATE ON orders"
                " FOR EACH ROW EXECUTE FUNCTION refuse_payment_outcome()"
            )
        finally:
            await admin.close()
        shop = Shop(system)
        before = await shop.stock("MOUSE-01")
        placed = await shop.place_ok(order_body(("MOUSE-01", 1), customer_id=victim))
        order_id = placed["id"]
        started = time.monotonic()

        async def dead_lettered() -> bool:
            depth = await shop.metric("order", "dead_letter_queue_depth")
            return depth >= 1

        await wait_until(dead_lettered, timeout=deadline + 30, interval=1)
        assert (await shop.order(order_id))["status"] == "PENDING"

        await wait_until(lambda: _all(shop, [order_id], "CANCELLED", DEADLINE), timeout=90)
        cancelled_after = time.monotonic() - started
        payment = await shop.wait_payment(order_id, "VOIDED")
        assert payment["status"] == "VOIDED", "the authorization the order never heard of"
        await shop.wait_emails(order_id, {"received", "cancelled"})

        async def released() -> bool:
            return await shop.stock("MOUSE-01") == before

        await wait_until(released, timeout=30)
        measured(
            f"  an outcome dead-lettered: order cancelled {cancelled_after:.1f}s after it was"
            f" placed (deadline {deadline:g}s), payment voided, stock released"
        )
