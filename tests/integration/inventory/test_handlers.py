"""The handlers through real transactions on a migrated database (seeded: 100 of each)."""

import uuid

import pytest
from events import Envelope, PermanentError
from inventory_service.domain import Line, ReservationStatus, StockLevel
from shop_contract.testing import line, order_cancelled, order_confirmed, order_created

from tests.integration.inventory.support import (
    Sessions,
    count_reservations,
    emitted,
    handle,
    items_of,
    kinds,
    lines,
    reservation_of,
    restock,
    stock_of,
)

S = ReservationStatus


async def test_migration_seeds_the_catalogue_with_100_each(sessions: Sessions) -> None:
    for sku in ("KEYBOARD-01", "MOUSE-01", "MONITOR-27", "USB-C-HUB", "HEADSET-01", "WEBCAM-01"):
        assert await stock_of(sessions, sku) == StockLevel(sku, 100, 0)


async def test_created_order_reserves_every_line(sessions: Sessions) -> None:
    order = order_created(items=lines({"MOUSE-01": 2, "KEYBOARD-01": 1}))

    await handle(sessions, order)

    assert await stock_of(sessions, "MOUSE-01") == StockLevel("MOUSE-01", 98, 2)
    assert await stock_of(sessions, "KEYBOARD-01") == StockLevel("KEYBOARD-01", 99, 1)
    reservation = await reservation_of(sessions, order.order_id)
    assert reservation is not None
    assert reservation.status is S.RESERVED
    assert reservation.lines == (Line("MOUSE-01", 2), Line("KEYBOARD-01", 1))
    [event] = await emitted(sessions, order.order_id)
    assert event.type == "inventory.reserved"
    assert event.correlation_id == str(order.order_id)
    assert items_of(event) == [
        {"sku": "MOUSE-01", "quantity": 2},
        {"sku": "KEYBOARD-01", "quantity": 1},
    ]


async def test_one_short_line_rejects_the_whole_order_and_changes_nothing(
    sessions: Sessions,
) -> None:
    await restock(sessions, {"MONITOR-27": 1})
    order = order_created(items=lines({"MOUSE-01": 5, "NO-SUCH-SKU": 1, "MONITOR-27": 2}))

    await handle(sessions, order)

    assert await stock_of(sessions, "MOUSE-01") == StockLevel("MOUSE-01", 100, 0)
    assert await stock_of(sessions, "MONITOR-27") == StockLevel("MONITOR-27", 1, 0)
    reservation = await reservation_of(sessions, order.order_id)
    assert reservation is not None
    assert reservation.status is S.REJECTED
    [event] = await emitted(sessions, order.order_id)
    assert event.type == "inventory.rejected"
    assert event.data["missing_skus"] == ["MONITOR-27", "NO-SUCH-SKU"]
    assert event.data["reason"] == "insufficient stock"


async def test_repeated_sku_lines_are_reserved_as_their_sum(sessions: Sessions) -> None:
    await restock(sessions, {"WEBCAM-01": 5})
    too_much = order_created(items=(line("WEBCAM-01", 3), line("WEBCAM-01", 3)))
    just_enough = order_created(items=(line("WEBCAM-01", 3), line("WEBCAM-01", 2)))

    await handle(sessions, too_much)
    await handle(sessions, just_enough)

    assert kinds(await emitted(sessions, too_much.order_id)) == ["inventory.rejected"]
    assert kinds(await emitted(sessions, just_enough.order_id)) == ["inventory.reserved"]
    assert await stock_of(sessions, "WEBCAM-01") == StockLevel("WEBCAM-01", 0, 5)


async def test_same_event_twice_is_handled_once(sessions: Sessions) -> None:
    order = order_created(items=lines({"MOUSE-01": 3}))
    envelope = Envelope.wrap(order)

    assert (await handle(sessions, order, envelope=envelope)).outcome == "handled"
    assert (await handle(sessions, order, envelope=envelope)).outcome == "duplicate"

    assert await stock_of(sessions, "MOUSE-01") == StockLevel("MOUSE-01", 97, 3)
    assert kinds(await emitted(sessions)) == ["inventory.reserved"]


async def test_order_created_again_under_a_new_event_id_reserves_nothing_more(
    sessions: Sessions,
) -> None:
    order = order_created(items=lines({"MOUSE-01": 3}))

    await handle(sessions, order)
    await handle(sessions, order)

    assert await stock_of(sessions, "MOUSE-01") == StockLevel("MOUSE-01", 97, 3)
    assert kinds(await emitted(sessions)) == ["inventory.reserved"]


async def test_rejected_order_created_again_is_not_reconsidered(sessions: Sessions) -> None:
    await restock(sessions, {"HEADSET-01": 0})
    order = order_created(items=lines({"HEADSET-01": 1}))
    await handle(sessions, order)
    await restock(sessions, {"HEADSET-01": 10})

    await handle(sessions, order)

    assert await stock_of(sessions, "HEADSET-01") == StockLevel("HEADSET-01", 10, 0)
    assert kinds(await emitted(sessions)) == ["inventory.rejected"]


async def test_cancelling_a_reservation_gives_the_stock_back(sessions: Sessions) -> None:
    order = order_created(items=lines({"MOUSE-01": 4, "USB-C-HUB": 1}))
    other = order_created(items=lines({"MOUSE-01": 1}))
    await handle(sessions, order)
    await handle(sessions, other)

    await handle(sessions, order_cancelled(order.order_id))

    assert await stock_of(sessions, "MOUSE-01") == StockLevel("MOUSE-01", 99, 1)
    assert await stock_of(sessions, "USB-C-HUB") == StockLevel("USB-C-HUB", 100, 0)
    reservation = await reservation_of(sessions, order.order_id)
    assert reservation is not None
    assert reservation.status is S.RELEASED
    events = await emitted(sessions, order.order_id)
    assert kinds(events) == ["inventory.reserved", "inventory.released"]
    assert items_of(events[1]) == [
        {"sku": "MOUSE-01", "quantity": 4},
        {"sku": "USB-C-HUB", "quantity": 1},
    ]
    assert events[1].causation_id is not None


async def test_cancelling_twice_releases_once(sessions: Sessions) -> None:
    order = order_created(items=lines({"MOUSE-01": 4}))
    await handle(sessions, order)

    await handle(sessions, order_cancelled(order.order_id))
    await handle(sessions, order_cancelled(order.order_id))

    assert await stock_of(sessions, "MOUSE-01") == StockLevel("MOUSE-01", 100, 0)
    assert kinds(await emitted(sessions)) == ["inventory.reserved", "inventory.released"]


async def test_cancelling_a_rejected_order_does_nothing(sessions: Sessions) -> None:
    order = order_created(items=lines({"MOUSE-01": 101}))
    await handle(sessions, order)

    await handle(sessions, order_cancelled(order.order_id))

    assert await stock_of(sessions, "MOUSE-01") == StockLevel("MOUSE-01", 100, 0)
    reservation = await reservation_of(sessions, order.order_id)
    assert reservation is not None
    assert reservation.status is S.REJECTED
    assert kinds(await emitted(sessions)) == ["inventory.rejected"]


async def test_cancel_before_created_leaves_a_tombstone_and_the_late_order_reserves_nothing(
    sessions: Sessions,
) -> None:
    order = order_created(items=lines({"KEYBOARD-01": 2}))

    await handle(sessions, order_cancelled(order.order_id))
    tombstone = await reservation_of(sessions, order.order_id)
    await handle(sessions, order)

    assert tombstone is not None
    assert tombstone.status is S.CANCELLED
    reservation = await reservation_of(sessions, order.order_id)
    assert reservation == tombstone
    assert await stock_of(sessions, "KEYBOARD-01") == StockLevel("KEYBOARD-01", 100, 0)
    assert await emitted(sessions) == []


async def test_cancel_twice_before_created_keeps_one_tombstone(sessions: Sessions) -> None:
    order_id = uuid.uuid4()

    await handle(sessions, order_cancelled(order_id))
    await handle(sessions, order_cancelled(order_id))

    assert await count_reservations(sessions) == 1
    assert await emitted(sessions) == []


async def test_confirming_commits_the_reserved_stock(sessions: Sessions) -> None:
    order = order_created(items=lines({"MONITOR-27": 3, "HEADSET-01": 1}))
    await handle(sessions, order)

    await handle(sessions, order_confirmed(order.order_id, items=order.items))

    assert await stock_of(sessions, "MONITOR-27") == StockLevel("MONITOR-27", 97, 0)
    assert await stock_of(sessions, "HEADSET-01") == StockLevel("HEADSET-01", 99, 0)
    reservation = await reservation_of(sessions, order.order_id)
    assert reservation is not None
    assert reservation.status is S.COMMITTED
    # Committing is internal: nobody downstream waits for it.
    assert kinds(await emitted(sessions)) == ["inventory.reserved"]


async def test_confirming_twice_commits_once(sessions: Sessions) -> None:
    order = order_created(items=lines({"MONITOR-27": 3}))
    await handle(sessions, order)

    await handle(sessions, order_confirmed(order.order_id, items=order.items))
    await handle(sessions, order_confirmed(order.order_id, items=order.items))

    assert await stock_of(sessions, "MONITOR-27") == StockLevel("MONITOR-27", 97, 0)


async def test_restock_while_reserved_keeps_the_reservation(sessions: Sessions) -> None:
    order = order_created(items=lines({"MOUSE-01": 10}))
    await handle(sessions, order)
    await restock(sessions, {"MOUSE-01": 5})

    await handle(sessions, order_cancelled(order.order_id))

    assert await stock_of(sessions, "MOUSE-01") == StockLevel("MOUSE-01", 15, 0)


async def test_confirmation_without_reservation_is_permanent_and_writes_nothing(
    sessions: Sessions,
) -> None:
    order = order_created(items=lines({"MOUSE-01": 1}))

    with pytest.raises(PermanentError, match="without a reservation"):
        await handle(sessions, order_confirmed(order.order_id, items=order.items))

    assert await count_reservations(sessions) == 0
    # The inbox claim rolled back with it: a replay from the DLQ is handled afresh.
    await handle(sessions, order)
    assert kinds(await emitted(sessions)) == ["inventory.reserved"]


@pytest.mark.parametrize("how", ["rejected", "released", "tombstone"])
async def test_confirming_an_order_that_holds_nothing_is_permanent(
    sessions: Sessions, how: str
) -> None:
    order = order_created(items=lines({"MOUSE-01": 101 if how == "rejected" else 1}))
    if how == "tombstone":
        await handle(sessions, order_cancelled(order.order_id))
    await handle(sessions, order)
    if how == "released":
        await handle(sessions, order_cancelled(order.order_id))

    with pytest.raises(PermanentError, match="confirmed but"):
        await handle(sessions, order_confirmed(order.order_id, items=order.items))

    assert await stock_of(sessions, "MOUSE-01") == StockLevel("MOUSE-01", 100, 0)


async def test_cancelling_a_committed_order_is_permanent_and_changes_nothing(
    sessions: Sessions,
) -> None:
    order = order_created(items=lines({"MOUSE-01": 2}))
    await handle(sessions, order)
    await handle(sessions, order_confirmed(order.order_id, items=order.items))

    with pytest.raises(PermanentError, match="after it was committed"):
        await handle(sessions, order_cancelled(order.order_id))

    assert await stock_of(sessions, "MOUSE-01") == StockLevel("MOUSE-01", 98, 0)
    reservation = await reservation_of(sessions, order.order_id)
    assert reservation is not None
    assert reservation.status is S.COMMITTED
