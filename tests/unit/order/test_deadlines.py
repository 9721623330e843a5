"""Nothing stays PENDING forever, and no key is remembered forever: with a clock, not sleeps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from events import Envelope
from order_service import service_layer
from order_service.dependencies import Dependencies
from order_service.domain import outcomes
from order_service.domain.catalogue import RequestedLine
from order_service.domain.idempotency import fingerprint
from order_service.domain.order import DEADLINE_EXCEEDED, Order
from order_service.domain.status import OrderStatus
from prometheus_client import REGISTRY
from shop_contract import OrderCancelled
from shop_contract.testing import payment_authorized

from tests.support.tokens import sealer
from tests.unit.order.fakes import FakeOrderDatabase, FakeUnitOfWork

DEADLINE = timedelta(minutes=10)
TTL = timedelta(hours=24)
DEPENDENCIES = Dependencies(payment_tokens=sealer(), deadline=DEADLINE, idempotency_ttl=TTL)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def command(key: str | None = None, token: str = "tok_visa") -> service_layer.PlaceOrder:
    """The same request each time (so a replayed key is not a conflict)."""
    return service_layer.PlaceOrder(
        customer_id="c-1",
        email="buyer@example.com",
        lines=[RequestedLine("MOUSE-01", 1)],
        payment_token=token,
        request_hash=fingerprint({"token": token}),
        idempotency_key=key,
    )


async def place(db: FakeOrderDatabase, key: str | None = None, clock: Clock | None = None) -> Order:
    deps = DEPENDENCIES if clock is None else replace(DEPENDENCIES, clock=clock)
    async with FakeUnitOfWork(db) as uow:
        return await service_layer.place_order(uow, command(key), deps)


async def expire(db: FakeOrderDatabase, now: datetime) -> tuple[int, FakeUnitOfWork]:
    async with FakeUnitOfWork(db) as uow:
        return await service_layer.expire_overdue_orders(uow, now=now, limit=100), uow


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_pending_order_is_cancelled_at_its_deadline_and_not_a_moment_before() -> None:
    db = FakeOrderDatabase()
    order = await place(db)
    exceeded_before = counted("orders_deadline_exceeded_total")

    assert (await expire(db, order.deadline_at - timedelta(seconds=1)))[0] == 0
    assert db.orders[order.id].status is OrderStatus.PENDING

    expired, uow = await expire(db, order.deadline_at)
    assert expired == 1
    stored = db.orders[order.id]
    assert (stored.status, stored.reason) == (OrderStatus.CANCELLED, DEADLINE_EXCEEDED)
    (cancelled,) = uow.emitted
    assert isinstance(cancelled, OrderCancelled)
    assert (cancelled.order_id, cancelled.reason) == (order.id, "deadline exceeded")
    # The history names the event the sweep caused, like any other status change.
    last = stored.history[-1]
    assert (last.status, last.event_type, last.event_id) == (
        OrderStatus.CANCELLED,
        "order.cancelled",
        uow.envelopes[0].id,
    )
    assert counted("orders_deadline_exceeded_total") == exceeded_before + 1


async def test_final_orders_are_never_swept_and_a_second_sweep_finds_nothing() -> None:
    db = FakeOrderDatabase()
    order = await place(db)
    later = order.deadline_at + timedelta(hours=1)
    db.orders[order.id].status = OrderStatus.CONFIRMED
    assert (await expire(db, later))[0] == 0
    db.orders[order.id].status = OrderStatus.PENDING
    assert (await expire(db, later))[0] == 1
    assert (await expire(db, later))[0] == 0


async def test_an_answer_after_the_deadline_is_recorded_and_changes_nothing() -> None:
    db = FakeOrderDatabase()
    order = await place(db)
    await expire(db, order.deadline_at)

    late = payment_authorized(order.id)
    async with FakeUnitOfWork(db, caused_by=Envelope.wrap(late)) as uow:
        await service_layer.record_outcome(uow, order.id, outcomes.payment_authorized())
    stored = db.orders[order.id]
    assert (stored.status, stored.reason) == (OrderStatus.CANCELLED, DEADLINE_EXCEEDED)
    assert stored.payment == outcomes.payment_authorized(), "kept, for the record"
    assert uow.emitted == [], "the payment service voids it on order.cancelled already"


async def test_the_oldest_pending_orders_age() -> None:
    db = FakeOrderDatabase()
    first = await place(db)
    await place(db)
    async with FakeUnitOfWork(db) as uow:
        age = await service_layer.oldest_pending_age(uow, now=first.created_at + DEADLINE / 2)
    assert age == DEADLINE / 2
    await expire(db, first.created_at + DEADLINE * 2)
    async with FakeUnitOfWork(db) as uow:
        assert await service_layer.oldest_pending_age(uow, now=datetime.now(UTC)) == timedelta(0)


async def test_an_idempotency_key_expires_after_its_time_to_live() -> None:
    clock = Clock()
    db = FakeOrderDatabase(clock=clock)
    first = await place(db, key="k-1", clock=clock)
    clock.now += TTL - timedelta(seconds=1)
    again = await place(db, key="k-1", clock=clock)
    assert again.id == first.id, "still remembered: the same order"

    clock.now += timedelta(seconds=2)
    later = await place(db, key="k-1", clock=clock)
    assert later.id != first.id, "expired: the key is free again"


async def test_keys_past_their_time_to_live_are_forgotten() -> None:
    clock = Clock()
    db = FakeOrderDatabase(clock=clock)
    await place(db, key="old", clock=clock)
    clock.now += timedelta(hours=25)
    await place(db, key="new", clock=clock)
    async with FakeUnitOfWork(db) as uow:
        forgotten = await service_layer.forget_idempotency_keys(uow, now=clock.now, ttl=TTL)
    assert forgotten == 1
    assert set(db.idempotency_keys) == {"new"}
