"""Races: many order.created handlers at the same time, each in its own transaction or
in batches, as the consumer runs them."""

import asyncio
import random
import uuid
from collections import Counter

from events import Event, Handler
from events.testing import deliver_batch
from inventory_service.domain import ReservationStatus, StockLevel
from inventory_service.service import SERVICE
from shop_contract.testing import order_cancelled, order_confirmed, order_created

from tests.integration.inventory.support import (
    CONSUMER,
    Sessions,
    emitted,
    handle,
    handler,
    items_of,
    lines,
    reservation_of,
    restock,
    stock_of,
)

N = 10  # units of the scarce SKU; 3N orders compete for them
PLENTY = 1000
OTHERS = ("KEYBOARD-01", "MOUSE-01", "USB-C-HUB")


async def test_concurrent_orders_never_oversell_nor_deadlock(sessions: Sessions) -> None:
    await restock(sessions, {"MONITOR-27": N, **dict.fromkeys(OTHERS, PLENTY)})
    shuffle = random.Random(7)
    orders = []
    for _ in range(3 * N):
        # Each order wants the scarce SKU and other shared ones, listed in its own
        # order: without a global lock order, these would deadlock.
        skus = ["MONITOR-27", *shuffle.sample(OTHERS, k=shuffle.randint(1, 3))]
        shuffle.shuffle(skus)
        wanted = {sku: shuffle.randint(1, 3) if sku in OTHERS else 1 for sku in skus}
        orders.append(order_created(items=lines(wanted)))

    results = await asyncio.gather(
        *(handle(sessions, order) for order in orders), return_exceptions=True
    )

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert await stock_of(sessions, "MONITOR-27") == StockLevel("MONITOR-27", 0, N)
    outcomes: Counter[str] = Counter()
    reserved_units: Counter[str] = Counter()
    for order in orders:
        events = await emitted(sessions, order.order_id)
        assert len(events) == 1, f"order {order.order_id} got {[e.type for e in events]}"
        [event] = events
        outcomes[event.type] += 1
        reservation = await reservation_of(sessions, order.order_id)
        assert reservation is not None
        if event.type == "inventory.reserved":
            assert reservation.status is ReservationStatus.RESERVED
            for item in items_of(event):
                reserved_units[item["sku"]] += item["quantity"]
        else:
            assert reservation.status is ReservationStatus.REJECTED
            assert event.data["missing_skus"] == ["MONITOR-27"]
    assert outcomes == {"inventory.reserved": N, "inventory.rejected": 2 * N}
    for sku in OTHERS:
        # What was reserved is exactly what left "available": no lost update.
        assert await stock_of(sessions, sku) == StockLevel(
            sku, PLENTY - reserved_units[sku], reserved_units[sku]
        )


async def test_cancel_racing_created_and_its_duplicate_leaves_stock_untouched(
    sessions: Sessions,
) -> None:
    orders = [order_created(items=lines({"MOUSE-01": 2, "KEYBOARD-01": 1})) for _ in range(12)]
    deliveries = [
        delivery
        for order in orders
        # order.created twice (as a re-publication would: new event ids) and its cancel.
        for delivery in (order, order, order_cancelled(order.order_id))
    ]
    random.Random(11).shuffle(deliveries)

    results = await asyncio.gather(
        *(handle(sessions, event) for event in deliveries), return_exceptions=True
    )

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert await stock_of(sessions, "MOUSE-01") == StockLevel("MOUSE-01", 100, 0)
    assert await stock_of(sessions, "KEYBOARD-01") == StockLevel("KEYBOARD-01", 100, 0)
    for order in orders:
        kinds = [event.type for event in await emitted(sessions, order.order_id)]
        reservation = await reservation_of(sessions, order.order_id)
        assert reservation is not None
        # Either the cancel came first (tombstone, nothing reserved) or the
        # reservation was made once and released once.
        if reservation.status is ReservationStatus.CANCELLED:
            assert kinds == []
        else:
            assert reservation.status is ReservationStatus.RELEASED
            assert kinds == ["inventory.reserved", "inventory.released"]


async def test_concurrent_duplicates_of_one_order_reserve_once(sessions: Sessions) -> None:
    order = order_created(uuid.uuid4(), items=lines({"HEADSET-01": 1}))

    results = await asyncio.gather(
        *(handle(sessions, order) for _ in range(10)), return_exceptions=True
    )

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert await stock_of(sessions, "HEADSET-01") == StockLevel("HEADSET-01", 99, 1)
    assert [e.type for e in await emitted(sessions)] == ["inventory.reserved"]


async def test_batches_that_cross_each_other_neither_deadlock_nor_oversell(
    sessions: Sessions,
) -> None:
    """Two batches handled at once, one with orders for A then B, the other B then A:
    each handler locks its own order's rows, so without the batch's up-front locks
    (``lock_batch``, in SKU order) the two transactions would wait for each other."""
    skus = ("KEYBOARD-01", "MOUSE-01")
    await restock(sessions, dict.fromkeys(skus, 2 * PLENTY))
    prepare = SERVICE.batch_locks()
    assert prepare is not None
    new_order = order_created(items=lines({skus[0]: 1}))
    handlers: dict[type[Event], Handler[Event]] = {type(new_order): handler(new_order)}

    def crossing(first: str, second: str) -> list[Event]:
        return [order_created(items=lines({sku: 1})) for sku in (first, second) * 5]

    batches = [crossing(*skus) if n % 2 else crossing(*reversed(skus)) for n in range(8)]
    results = await asyncio.gather(
        *(
            deliver_batch(sessions, handlers, batch, prepare=prepare, consumer=CONSUMER)
            for batch in batches
        )
    )

    assert all(d.outcome == "handled" for deliveries in results for d in deliveries)
    for sku in skus:
        assert await stock_of(sessions, sku) == StockLevel(sku, 2 * PLENTY - 40, 40)


async def test_a_batch_and_single_deliveries_of_the_same_orders_do_not_deadlock(
    sessions: Sessions,
) -> None:
    """The consumer handles a failed batch's events alone, beside other batches: a
    batch must lock reservations and stock in the sequence a single event does."""
    skus = ("KEYBOARD-01", "MOUSE-01", "USB-C-HUB")
    await restock(sessions, dict.fromkeys(skus, PLENTY))
    orders = [order_created(items=lines(dict.fromkeys(skus, 1))) for _ in range(12)]
    for order in orders:
        await handle(sessions, order)
    prepare = SERVICE.batch_locks()
    assert prepare is not None
    settling: list[Event] = [
        order_confirmed(o.order_id) if n % 2 else order_cancelled(o.order_id)
        for n, o in enumerate(orders)
    ]
    handlers: dict[type[Event], Handler[Event]] = {type(e): handler(e) for e in settling}
    batch = deliver_batch(sessions, handlers, settling, prepare=prepare, consumer=CONSUMER)
    # The same events again, one by one and in reverse: the inbox lets one side win.
    singles = [handle(sessions, event) for event in reversed(settling)]

    results = await asyncio.gather(batch, *singles, return_exceptions=True)

    assert [r for r in results if isinstance(r, BaseException)] == []
    confirmed = len(orders) // 2
    for sku in skus:
        assert await stock_of(sessions, sku) == StockLevel(sku, PLENTY - confirmed, 0)
