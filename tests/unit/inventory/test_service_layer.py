"""The inventory use cases and handlers on a fake unit of work: no database, no broker."""

from __future__ import annotations

import copy
from uuid import UUID, uuid4

import pytest
from events import Envelope, Event, PermanentError
from inventory_service import handlers, service_layer
from inventory_service.adapters.repository import ReservationRepository, StockRepository
from inventory_service.dependencies import Dependencies
from inventory_service.domain import Line, Reservation, ReservationStatus, StockLevel
from inventory_service.service import SERVICE
from inventory_service.unit_of_work import UnitOfWork
from prometheus_client import REGISTRY
from shop_contract import (
    InventoryRejected,
    InventoryReleased,
    InventoryReserved,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    StockLine,
)
from shop_contract.testing import line, order_cancelled, order_confirmed, order_created

from tests.unit.inventory.fakes import (
    FakeInventoryDatabase,
    FakeReservationRepository,
    FakeStockRepository,
    FakeUnitOfWork,
)

S = ReservationStatus
DEPENDENCIES = Dependencies()


@pytest.fixture
def db() -> FakeInventoryDatabase:
    return FakeInventoryDatabase()


def lines(*items: tuple[str, int]) -> tuple[Line, ...]:
    return tuple(Line(sku, quantity) for sku, quantity in items)


async def reserve(
    db: FakeInventoryDatabase, order_id: UUID, *items: tuple[str, int]
) -> FakeUnitOfWork:
    async with FakeUnitOfWork(db) as uow:
        await service_layer.reserve_stock(uow, order_id, lines(*items))
    return uow


async def release(db: FakeInventoryDatabase, order_id: UUID) -> FakeUnitOfWork:
    async with FakeUnitOfWork(db) as uow:
        await service_layer.release_stock(uow, order_id, reason="payment declined")
    return uow


async def commit(db: FakeInventoryDatabase, order_id: UUID) -> FakeUnitOfWork:
    async with FakeUnitOfWork(db) as uow:
        await service_layer.commit_stock(uow, order_id)
    return uow


async def handle(db: FakeInventoryDatabase, event: Event) -> FakeUnitOfWork:
    """Handle ``event`` as the consumer does: its handler, in a transaction it caused."""
    async with FakeUnitOfWork(db, caused_by=Envelope.wrap(event)) as uow:
        await SERVICE.handlers[type(event)](event, uow, DEPENDENCIES)
    return uow


def counted(outcome: str) -> float:
    sample = REGISTRY.get_sample_value("inventory_reservations_total", {"outcome": outcome})
    return sample or 0.0


async def test_the_fakes_stand_in_for_the_real_protocols() -> None:
    # mypy checks these assignments: the fakes implement the Protocols.
    stock: StockRepository = FakeStockRepository({"A": StockLevel("A", 1)})
    reservations: ReservationRepository = FakeReservationRepository()
    uow: UnitOfWork = FakeUnitOfWork()

    assert await stock.lock(["Z", "A"]) == {"A": StockLevel("A", 1)}
    order_id = uuid4()
    assert await reservations.add(Reservation.tombstone(order_id))
    assert not await reservations.add(Reservation(order_id, S.RESERVED, lines(("A", 1))))
    assert await uow.stock.get("MOUSE-01") == StockLevel("MOUSE-01", 100, 0)


# --- reserving ------------------------------------------------------------------


async def test_reserving_takes_every_line_and_announces_it(db: FakeInventoryDatabase) -> None:
    order_id = uuid4()
    before = counted("reserved")

    uow = await reserve(db, order_id, ("MOUSE-01", 2), ("KEYBOARD-01", 1))

    assert db.stock["MOUSE-01"] == StockLevel("MOUSE-01", 98, 2)
    assert db.stock["KEYBOARD-01"] == StockLevel("KEYBOARD-01", 99, 1)
    assert db.reservations[order_id] == Reservation(
        order_id, S.RESERVED, lines(("MOUSE-01", 2), ("KEYBOARD-01", 1))
    )
    assert uow.emitted == [
        InventoryReserved(
            order_id=order_id,
            items=(StockLine(sku="MOUSE-01", quantity=2), StockLine(sku="KEYBOARD-01", quantity=1)),
        )
    ]
    assert uow.locked_stock == ["KEYBOARD-01", "MOUSE-01"]
    assert [e.correlation_id for e in db.outbox] == [str(order_id)]
    assert counted("reserved") == before + 1


async def test_one_short_line_rejects_the_whole_order_and_changes_no_stock(
    db: FakeInventoryDatabase,
) -> None:
    db.stock["MONITOR-27"] = StockLevel("MONITOR-27", 1)
    stock_before = dict(db.stock)
    order_id = uuid4()

    uow = await reserve(db, order_id, ("MOUSE-01", 5), ("NO-SUCH-SKU", 1), ("MONITOR-27", 2))

    assert db.stock == stock_before
    assert db.reservations[order_id].status is S.REJECTED
    assert uow.emitted == [
        InventoryRejected(
            order_id=order_id,
            missing_skus=("MONITOR-27", "NO-SUCH-SKU"),
            reason="insufficient stock",
        )
    ]


async def test_repeated_sku_lines_are_reserved_as_their_sum(db: FakeInventoryDatabase) -> None:
    db.stock["WEBCAM-01"] = StockLevel("WEBCAM-01", 5)
    too_much, just_enough = uuid4(), uuid4()

    await reserve(db, too_much, ("WEBCAM-01", 3), ("WEBCAM-01", 3))
    await reserve(db, just_enough, ("WEBCAM-01", 3), ("WEBCAM-01", 2))

    assert [e.type for e in db.outbox] == ["inventory.rejected", "inventory.reserved"]
    assert db.stock["WEBCAM-01"] == StockLevel("WEBCAM-01", 0, 5)


@pytest.mark.parametrize("available", [100, 0])
async def test_an_order_is_decided_once_whatever_comes_later(
    db: FakeInventoryDatabase, available: int
) -> None:
    db.stock["HEADSET-01"] = StockLevel("HEADSET-01", available)
    order_id = uuid4()
    await reserve(db, order_id, ("HEADSET-01", 1))
    db.stock["HEADSET-01"] = StockLevel("HEADSET-01", 10, db.stock["HEADSET-01"].reserved)
    committed = copy.deepcopy(db)

    again = await reserve(db, order_id, ("HEADSET-01", 1))

    assert again.emitted == []
    assert db == committed


# --- releasing ------------------------------------------------------------------


async def test_cancelling_a_reservation_gives_the_stock_back(db: FakeInventoryDatabase) -> None:
    order_id, other = uuid4(), uuid4()
    await reserve(db, order_id, ("MOUSE-01", 4), ("USB-C-HUB", 1))
    await reserve(db, other, ("MOUSE-01", 1))
    before = counted("released")

    uow = await release(db, order_id)

    assert db.stock["MOUSE-01"] == StockLevel("MOUSE-01", 99, 1)
    assert db.stock["USB-C-HUB"] == StockLevel("USB-C-HUB", 100, 0)
    assert db.reservations[order_id].status is S.RELEASED
    assert db.reservations[other].status is S.RESERVED
    assert uow.emitted == [
        InventoryReleased(
            order_id=order_id,
            items=(StockLine(sku="MOUSE-01", quantity=4), StockLine(sku="USB-C-HUB", quantity=1)),
        )
    ]
    assert uow.locked_reservations == {order_id}
    assert counted("released") == before + 1


async def test_cancelling_twice_releases_once(db: FakeInventoryDatabase) -> None:
    order_id = uuid4()
    await reserve(db, order_id, ("MOUSE-01", 4))
    await release(db, order_id)
    committed = copy.deepcopy(db)

    again = await release(db, order_id)

    assert again.emitted == []
    assert db == committed
    assert db.stock["MOUSE-01"] == StockLevel("MOUSE-01", 100, 0)


async def test_cancelling_a_rejected_order_does_nothing(db: FakeInventoryDatabase) -> None:
    order_id = uuid4()
    await reserve(db, order_id, ("MOUSE-01", 101))

    uow = await release(db, order_id)

    assert uow.emitted == []
    assert db.reservations[order_id].status is S.REJECTED
    assert db.stock["MOUSE-01"] == StockLevel("MOUSE-01", 100, 0)


async def test_a_cancel_before_the_order_leaves_a_tombstone_and_the_order_reserves_nothing(
    db: FakeInventoryDatabase,
) -> None:
    order_id = uuid4()
    before = counted("cancelled")

    tombstoned = await release(db, order_id)
    late = await reserve(db, order_id, ("KEYBOARD-01", 2))
    twice = await release(db, order_id)

    assert db.reservations == {order_id: Reservation.tombstone(order_id)}
    assert tombstoned.emitted == late.emitted == twice.emitted == []
    assert db.stock["KEYBOARD-01"] == StockLevel("KEYBOARD-01", 100, 0)
    assert counted("cancelled") == before + 1


async def test_cancelling_a_committed_order_is_permanent_and_changes_nothing(
    db: FakeInventoryDatabase,
) -> None:
    order_id = uuid4()
    await reserve(db, order_id, ("MOUSE-01", 2))
    await commit(db, order_id)
    committed = copy.deepcopy(db)

    with pytest.raises(PermanentError, match="after it was committed"):
        await release(db, order_id)

    assert db == committed
    assert db.reservations[order_id].status is S.COMMITTED


# --- committing -----------------------------------------------------------------


async def test_confirming_commits_the_reserved_stock_without_an_event(
    db: FakeInventoryDatabase,
) -> None:
    order_id = uuid4()
    await reserve(db, order_id, ("MONITOR-27", 3), ("HEADSET-01", 1))
    before = counted("committed")

    uow = await commit(db, order_id)
    again = await commit(db, order_id)

    assert uow.emitted == again.emitted == []
    assert db.stock["MONITOR-27"] == StockLevel("MONITOR-27", 97, 0)
    assert db.stock["HEADSET-01"] == StockLevel("HEADSET-01", 99, 0)
    assert db.reservations[order_id].status is S.COMMITTED
    assert [e.type for e in db.outbox] == ["inventory.reserved"]
    assert counted("committed") == before + 1


async def test_confirming_without_a_reservation_is_permanent_and_writes_nothing(
    db: FakeInventoryDatabase,
) -> None:
    committed = copy.deepcopy(db)

    with pytest.raises(PermanentError, match="without a reservation"):
        await commit(db, uuid4())

    assert db == committed


@pytest.mark.parametrize("how", ["rejected", "released", "tombstone"])
async def test_confirming_an_order_that_holds_nothing_is_permanent(
    db: FakeInventoryDatabase, how: str
) -> None:
    order_id = uuid4()
    if how == "tombstone":
        await release(db, order_id)
    await reserve(db, order_id, ("MOUSE-01", 101 if how == "rejected" else 1))
    if how == "released":
        await release(db, order_id)
    committed = copy.deepcopy(db)

    with pytest.raises(PermanentError, match="confirmed but"):
        await commit(db, order_id)

    assert db == committed
    assert db.stock["MOUSE-01"] == StockLevel("MOUSE-01", 100, 0)


# --- restocking and reading -------------------------------------------------------


async def test_restocking_sets_what_can_be_sold_and_keeps_what_is_reserved(
    db: FakeInventoryDatabase,
) -> None:
    order_id = uuid4()
    await reserve(db, order_id, ("MOUSE-01", 10))

    async with FakeUnitOfWork(db) as uow:
        level = await service_layer.restock(uow, "MOUSE-01", 5)
        new = await service_layer.restock(uow, "CABLE-2M", 7)

    assert level == StockLevel("MOUSE-01", 5, 10)
    assert new == StockLevel("CABLE-2M", 7, 0)
    await release(db, order_id)
    async with FakeUnitOfWork(db) as uow:
        assert await service_layer.stock_of(uow, "MOUSE-01") == StockLevel("MOUSE-01", 15, 0)
        assert await service_layer.stock_of(uow, "NOPE-1") is None


# --- the handlers -----------------------------------------------------------------


def test_the_service_handles_exactly_the_order_events() -> None:
    assert dict(SERVICE.handlers) == {
        OrderCreated: handlers.on_order_created,
        OrderConfirmed: handlers.on_order_confirmed,
        OrderCancelled: handlers.on_order_cancelled,
    }
    assert SERVICE.consumes == SERVICE.topology.service(SERVICE.name).consumes


async def test_the_handlers_take_an_order_through_its_life(db: FakeInventoryDatabase) -> None:
    created = order_created(items=[line("MOUSE-01", 2), line("KEYBOARD-01", 1)])

    reserved = await handle(db, created)
    confirmed = await handle(db, order_confirmed(created.order_id, items=created.items))

    assert [type(e) for e in reserved.emitted] == [InventoryReserved]
    assert reserved.caused_by is not None
    assert reserved.envelopes[0].causation_id == reserved.caused_by.id
    assert confirmed.emitted == []
    assert db.reservations[created.order_id] == Reservation(
        created.order_id, S.COMMITTED, lines(("MOUSE-01", 2), ("KEYBOARD-01", 1))
    )
    assert db.stock["MOUSE-01"] == StockLevel("MOUSE-01", 98, 0)


async def test_a_handler_takes_the_unit_of_work_and_the_dependencies(
    db: FakeInventoryDatabase,
) -> None:
    created = order_created(items=[line("USB-C-HUB", 4)])
    await handle(db, created)
    cancelled = order_cancelled(created.order_id)

    async with FakeUnitOfWork(db, caused_by=Envelope.wrap(cancelled)) as uow:
        await handlers.on_order_cancelled(cancelled, uow, DEPENDENCIES)

    assert [type(e) for e in uow.emitted] == [InventoryReleased]
    assert db.reservations[created.order_id].status is S.RELEASED
    assert db.stock["USB-C-HUB"] == StockLevel("USB-C-HUB", 100, 0)


# --- counting ----------------------------------------------------------------------


async def test_a_rolled_back_reservation_is_not_counted(db: FakeInventoryDatabase) -> None:
    before = counted("reserved")
    uow = FakeUnitOfWork(db)

    await service_layer.reserve_stock(uow, uuid4(), lines(("MOUSE-01", 1)))
    uow.rollback()

    assert db.reservations == {}
    assert counted("reserved") == before


# --- batches --------------------------------------------------------------------


async def test_a_batch_locks_every_stock_row_it_will_touch_first_in_sku_order(
    db: FakeInventoryDatabase,
) -> None:
    """The consumer handles a batch in one transaction: locking all its rows up front,
    in one global order, is what keeps two batches from deadlocking on each other."""
    settled = uuid4()
    await reserve(db, settled, ("USB-C-HUB", 1))
    batch = [
        order_created(items=(line("MOUSE-01", 1),)),
        order_cancelled(settled),
        order_created(items=(line("KEYBOARD-01", 1), line("MONITOR-27", 1))),
    ]

    async with FakeUnitOfWork(db) as uow:
        await handlers.lock_batch(uow, batch)

    assert uow.locked_stock == ["KEYBOARD-01", "MONITOR-27", "MOUSE-01", "USB-C-HUB"]
    assert uow.locked_reservations == {settled}


async def test_a_batch_of_nothing_inventory_owns_locks_nothing(db: FakeInventoryDatabase) -> None:
    async with FakeUnitOfWork(db) as uow:
        await handlers.lock_batch(uow, [order_confirmed(uuid4())])

    assert uow.locked_stock == []
