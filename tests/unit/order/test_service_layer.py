"""The order use cases and handlers on a fake unit of work: no database, no broker."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from events import Envelope, Event, PermanentError
from order_service import handlers, service_layer
from order_service.adapters.repository import (
    Catalogue,
    IdempotencyKeys,
    IdempotencyRecord,
    OrderRepository,
)
from order_service.dependencies import Dependencies
from order_service.domain import outcomes
from order_service.domain.catalogue import OrderLine, RequestedLine, UnorderableLines
from order_service.domain.idempotency import fingerprint
from order_service.domain.order import Order, StatusChange
from order_service.domain.outcomes import Outcome, Side
from order_service.domain.status import OrderStatus
from order_service.service import SERVICE
from order_service.unit_of_work import UnitOfWork
from prometheus_client import REGISTRY
from shop_contract import (
    InventoryRejected,
    InventoryReserved,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    PaymentAuthorized,
    PaymentDeclined,
)
from shop_contract.testing import (
    inventory_rejected,
    inventory_reserved,
    payment_authorized,
    payment_declined,
)

from tests.support.tokens import opener, sealer
from tests.unit.order.fakes import (
    SEEDED_CATALOGUE,
    FakeCatalogue,
    FakeIdempotencyKeys,
    FakeOrderDatabase,
    FakeOrderRepository,
    FakeUnitOfWork,
)

DEPENDENCIES = Dependencies(
    payment_tokens=sealer(), deadline=timedelta(minutes=10), idempotency_ttl=timedelta(hours=24)
)
LINES = (("KEYBOARD-01", 2), ("USB-C-HUB", 1))


@pytest.fixture
def db() -> FakeOrderDatabase:
    return FakeOrderDatabase()


def command(
    *lines: tuple[str, int], key: str | None = None, token: str = "tok_visa"
) -> service_layer.PlaceOrder:
    requested = lines or LINES
    return service_layer.PlaceOrder(
        customer_id="cust-42",
        email="buyer@example.com",
        lines=[RequestedLine(sku, quantity) for sku, quantity in requested],
        payment_token=token,
        request_hash=fingerprint({"items": requested, "payment_token": token}),
        idempotency_key=key,
    )


async def place(db: FakeOrderDatabase, placing: service_layer.PlaceOrder) -> Order:
    async with FakeUnitOfWork(db) as uow:
        return await service_layer.place_order(uow, placing, DEPENDENCIES)


async def answer(db: FakeOrderDatabase, event: Event) -> FakeUnitOfWork:
    """Handle ``event`` as the consumer does: its handler, in a transaction it caused."""
    async with FakeUnitOfWork(db, caused_by=Envelope.wrap(event)) as uow:
        await SERVICE.handlers[type(event)](event, uow, DEPENDENCIES)
    return uow


def counted(status: OrderStatus) -> float:
    return REGISTRY.get_sample_value("orders_total", {"status": status.value}) or 0.0


async def test_the_fakes_stand_in_for_the_real_protocols() -> None:
    # mypy checks these assignments: the fakes implement the Protocols.
    catalogue: Catalogue = FakeCatalogue()
    orders: OrderRepository = FakeOrderRepository()
    keys: IdempotencyKeys = FakeIdempotencyKeys()
    uow: UnitOfWork = FakeUnitOfWork()

    assert await catalogue.prices_of(["MOUSE-01", "NOPE"]) == {"MOUSE-01": Decimal("29.50")}
    assert await orders.get(uuid4(), lock=True) is None
    order_id = uuid4()
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    first = IdempotencyRecord("k", "hash", order_id)
    assert await keys.claim([first], expired_before=long_ago) == {"k"}
    again = IdempotencyRecord("k", "other hash", uuid4())
    assert await keys.claim([again], expired_before=long_ago) == set()
    assert await keys.find("k") == IdempotencyRecord("k", "hash", order_id)
    assert uow.caused_by is None


# --- placing an order ---------------------------------------------------------


async def test_placing_an_order_stores_it_pending_and_emits_order_created(
    db: FakeOrderDatabase,
) -> None:
    async with FakeUnitOfWork(db) as uow:
        order = await service_layer.place_order(uow, command(), DEPENDENCIES)

    assert order.status is OrderStatus.PENDING
    assert order.lines == (
        OrderLine("KEYBOARD-01", 2, Decimal("89.00")),
        OrderLine("USB-C-HUB", 1, Decimal("39.90")),
    )
    assert order.total == Decimal("217.90")
    (created,) = uow.emitted
    assert isinstance(created, OrderCreated)
    assert (created.order_id, created.total, created.items) == (
        order.id,
        Decimal("217.90"),
        order.created(sealed_payment_token="-").items,
    )
    assert "tok_visa" not in created.model_dump_json(), "only the payment service can read it"
    assert opener().open(created.sealed_payment_token) == "tok_visa"
    (envelope,) = db.outbox
    assert envelope.type == "order.created"
    assert envelope.correlation_id == str(order.id)
    assert envelope.causation_id is None
    stored = db.orders[order.id]
    assert stored.status is OrderStatus.PENDING
    assert stored.lines == order.lines
    assert stored.history == [
        StatusChange(OrderStatus.PENDING, order.created_at, "order.created", envelope.id)
    ]


async def test_the_pending_count_rises_once_the_transaction_commits(
    db: FakeOrderDatabase,
) -> None:
    before = counted(OrderStatus.PENDING)
    uow = FakeUnitOfWork(db)

    await service_layer.place_order(uow, command(), DEPENDENCIES)

    assert counted(OrderStatus.PENDING) == before
    uow.commit()
    assert counted(OrderStatus.PENDING) == before + 1


async def test_a_rolled_back_order_leaves_nothing_and_is_not_counted(
    db: FakeOrderDatabase,
) -> None:
    before = counted(OrderStatus.PENDING)
    uow = FakeUnitOfWork(db)

    await service_layer.place_order(uow, command(key="k-1"), DEPENDENCIES)
    uow.rollback()

    assert (db.orders, db.idempotency_keys, db.outbox) == ({}, {}, [])
    assert counted(OrderStatus.PENDING) == before


async def test_unknown_and_repeated_skus_are_refused_naming_each_line(
    db: FakeOrderDatabase,
) -> None:
    bad = command(("NO-SUCH-SKU", 1), ("MOUSE-01", 1), ("MOUSE-01", 2), key="k-bad")

    with pytest.raises(UnorderableLines) as refused:
        await place(db, bad)

    assert [(p.index, p.sku, p.kind) for p in refused.value.problems] == [
        (0, "NO-SUCH-SKU", "unknown_sku"),
        (2, "MOUSE-01", "duplicate_sku"),
    ]
    assert (db.orders, db.idempotency_keys, db.outbox) == ({}, {}, [])


# --- Idempotency-Key ------------------------------------------------------------


async def test_the_same_key_and_request_replays_the_order_without_a_second_event(
    db: FakeOrderDatabase,
) -> None:
    first = await place(db, command(key="k-1"))
    before = counted(OrderStatus.PENDING)

    async with FakeUnitOfWork(db) as uow:
        again = await service_layer.place_order(uow, command(key="k-1"), DEPENDENCIES)

    assert again.id == first.id
    assert (again.lines, again.total, again.created_at) == (
        first.lines,
        first.total,
        first.created_at,
    )
    assert uow.emitted == []
    assert list(db.orders) == [first.id]
    assert len(db.outbox) == 1
    assert counted(OrderStatus.PENDING) == before


async def test_the_same_key_with_another_request_is_a_conflict_and_writes_nothing(
    db: FakeOrderDatabase,
) -> None:
    first = await place(db, command(key="k-1"))
    committed = copy.deepcopy(db)

    with pytest.raises(service_layer.IdempotencyConflict, match="Idempotency-Key"):
        await place(db, command(key="k-1", token="tok_other"))

    assert db == committed
    assert db.idempotency_keys["k-1"].order_id == first.id


async def test_a_refused_request_does_not_use_up_its_key(db: FakeOrderDatabase) -> None:
    with pytest.raises(UnorderableLines):
        await place(db, command(("NO-SUCH-SKU", 1), key="k-1"))

    placed = await place(db, command(key="k-1"))

    assert db.idempotency_keys["k-1"].order_id == placed.id


async def test_different_keys_place_different_orders(db: FakeOrderDatabase) -> None:
    first = await place(db, command(key="k-1"))
    second = await place(db, command(key="k-2"))

    assert first.id != second.id
    assert [e.type for e in db.outbox] == ["order.created", "order.created"]


# --- orders placed together (the api's group commit) -----------------------------


async def test_orders_placed_together_each_get_their_own_answer(db: FakeOrderDatabase) -> None:
    earlier = await place(db, command(key="used-before"))
    commands = [
        command(key="k-new"),
        command(("NO-SUCH-SKU", 1), key="k-refused"),
        command(key="used-before"),
        command(key="k-new"),  # a twin of the first, in the same transaction
        command(key="k-new", token="tok_other"),  # the first's key, another body
        command(("MOUSE-01", 1)),
    ]

    async with FakeUnitOfWork(db) as uow:
        placed = await service_layer.place_orders(uow, commands, DEPENDENCIES)

    new, refused, replayed, twin, conflict, unkeyed = placed
    assert isinstance(new, Order)
    assert isinstance(unkeyed, Order)
    assert isinstance(refused, UnorderableLines)
    assert isinstance(replayed, Order)
    assert replayed.id == earlier.id
    assert isinstance(twin, Order)
    assert twin.id == new.id
    assert isinstance(conflict, service_layer.IdempotencyConflict)
    assert sorted(db.orders) == sorted([earlier.id, new.id, unkeyed.id])
    assert [e.correlation_id for e in db.outbox] == [str(o.id) for o in (earlier, new, unkeyed)]
    assert "k-refused" not in db.idempotency_keys  # refused: its key stays unused
    assert db.idempotency_keys["k-new"].order_id == new.id


# --- the saga's join --------------------------------------------------------------


async def test_both_positive_answers_confirm_the_order_and_announce_it(
    db: FakeOrderDatabase,
) -> None:
    order = await place(db, command())
    confirmed_before = counted(OrderStatus.CONFIRMED)

    first = await answer(db, inventory_reserved(order.id))
    assert first.emitted == []
    assert db.orders[order.id].status is OrderStatus.PENDING
    assert db.orders[order.id].inventory == outcomes.stock_reserved()

    cause = Envelope.wrap(payment_authorized(order.id))
    uow = FakeUnitOfWork(db, caused_by=cause)
    await service_layer.record_outcome(uow, order.id, outcomes.payment_authorized())

    assert uow.locked == {order.id}
    (confirmed,) = uow.emitted
    assert isinstance(confirmed, OrderConfirmed)
    assert (confirmed.order_id, confirmed.total, confirmed.items) == (
        order.id,
        Decimal("217.90"),
        order.created(sealed_payment_token="-").items,
    )
    assert uow.envelopes[0].causation_id == cause.id
    assert uow.envelopes[0].correlation_id == str(order.id)
    assert db.orders[order.id].status is OrderStatus.PENDING, "not before the commit"
    assert counted(OrderStatus.CONFIRMED) == confirmed_before

    uow.commit()

    stored = db.orders[order.id]
    assert (stored.status, stored.reason) == (OrderStatus.CONFIRMED, None)
    assert stored.history[1:] == [
        StatusChange(OrderStatus.CONFIRMED, stored.updated_at, "payment.authorized", cause.id)
    ]
    assert [e.type for e in db.outbox] == ["order.created", "order.confirmed"]
    assert counted(OrderStatus.CONFIRMED) == confirmed_before + 1


async def test_a_stock_rejection_cancels_at_once_naming_the_missing_skus(
    db: FakeOrderDatabase,
) -> None:
    order = await place(db, command())
    cancelled_before = counted(OrderStatus.CANCELLED)

    uow = await answer(db, inventory_rejected(order.id, missing=("MONITOR-27", "MOUSE-01")))

    (cancelled,) = uow.emitted
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.reason == "out of stock: MONITOR-27, MOUSE-01"
    stored = db.orders[order.id]
    assert (stored.status, stored.reason) == (
        OrderStatus.CANCELLED,
        "out of stock: MONITOR-27, MOUSE-01",
    )
    assert [h.status for h in stored.history] == [OrderStatus.PENDING, OrderStatus.CANCELLED]
    assert stored.history[-1].event_type == "inventory.rejected"
    assert counted(OrderStatus.CANCELLED) == cancelled_before + 1


async def test_a_repeated_or_conflicting_answer_changes_nothing(db: FakeOrderDatabase) -> None:
    order = await place(db, command())
    await answer(db, inventory_reserved(order.id))
    await answer(db, payment_authorized(order.id))
    committed = copy.deepcopy(db)
    confirmed_before = counted(OrderStatus.CONFIRMED)

    again = await answer(db, payment_authorized(order.id))  # a redelivery, new event id
    conflicting = await answer(db, payment_declined(order.id))
    stale = await answer(db, inventory_rejected(order.id))

    assert again.emitted == conflicting.emitted == stale.emitted == []
    assert db == committed
    assert counted(OrderStatus.CONFIRMED) == confirmed_before


async def test_an_answer_after_the_end_is_recorded_and_decides_nothing(
    db: FakeOrderDatabase,
) -> None:
    order = await place(db, command())
    await answer(db, payment_declined(order.id, reason="card declined"))

    late = await answer(db, inventory_reserved(order.id))

    stored = db.orders[order.id]
    assert late.emitted == []
    assert stored.inventory == outcomes.stock_reserved()
    assert (stored.status, stored.reason) == (
        OrderStatus.CANCELLED,
        "payment declined: card declined",
    )
    assert [h.status for h in stored.history] == [OrderStatus.PENDING, OrderStatus.CANCELLED]
    assert [e.type for e in db.outbox] == ["order.created", "order.cancelled"]


async def test_an_answer_for_an_unknown_order_can_never_succeed(db: FakeOrderDatabase) -> None:
    with pytest.raises(PermanentError, match="no order"):
        await answer(db, inventory_reserved(uuid4()))
    assert db.outbox == []


async def test_an_outcome_is_recorded_only_while_handling_its_event(
    db: FakeOrderDatabase,
) -> None:
    order = await place(db, command())

    with pytest.raises(ValueError, match="while handling"):
        async with FakeUnitOfWork(db) as uow:
            await service_layer.record_outcome(uow, order.id, outcomes.stock_reserved())

    assert db.orders[order.id].inventory is None


# --- the handlers -----------------------------------------------------------------


def test_the_service_handles_exactly_the_four_answers() -> None:
    assert dict(SERVICE.handlers) == {
        InventoryReserved: handlers.on_inventory_reserved,
        InventoryRejected: handlers.on_inventory_rejected,
        PaymentAuthorized: handlers.on_payment_authorized,
        PaymentDeclined: handlers.on_payment_declined,
    }
    assert SERVICE.consumes == SERVICE.topology.service(SERVICE.name).consumes


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (inventory_reserved, Outcome(Side.INVENTORY, positive=True)),
        (
            lambda order_id: inventory_rejected(order_id, missing=(), reason="warehouse closed"),
            Outcome(Side.INVENTORY, False, "stock not reserved: warehouse closed"),
        ),
        (payment_authorized, Outcome(Side.PAYMENT, positive=True)),
        (
            lambda order_id: payment_declined(order_id, reason="insufficient funds"),
            Outcome(Side.PAYMENT, False, "payment declined: insufficient funds"),
        ),
    ],
)
async def test_each_handler_records_its_sides_answer(
    db: FakeOrderDatabase, make: Callable[[UUID], Event], expected: Outcome
) -> None:
    order = await place(db, command())
    event = make(order.id)

    uow = await answer(db, event)

    assert db.orders[order.id].outcome_of(expected.side) == expected
    assert uow.locked == {order.id}


async def test_a_handler_takes_the_unit_of_work_and_the_dependencies(
    db: FakeOrderDatabase,
) -> None:
    order = await place(db, command())
    event = inventory_rejected(order.id, missing=("WEBCAM-01",))

    async with FakeUnitOfWork(db, caused_by=Envelope.wrap(event)) as uow:
        await handlers.on_inventory_rejected(event, uow, DEPENDENCIES)

    assert db.orders[order.id].reason == "out of stock: WEBCAM-01"
    assert [type(e) for e in uow.emitted] == [OrderCancelled]


# --- reading ------------------------------------------------------------------------


async def test_the_catalogue_is_listed_by_sku_and_an_unknown_order_is_none(
    db: FakeOrderDatabase,
) -> None:
    async with FakeUnitOfWork(db) as uow:
        products = await service_layer.catalogue(uow)
        missing = await service_layer.order_of(uow, uuid4())

    assert products == sorted(SEEDED_CATALOGUE, key=lambda product: product.sku)
    assert missing is None


async def test_a_placed_order_reads_back_as_placed(db: FakeOrderDatabase) -> None:
    placed = await place(db, command(("MOUSE-01", 3)))

    async with FakeUnitOfWork(db) as uow:
        read = await service_layer.order_of(uow, placed.id)

    assert read == placed
