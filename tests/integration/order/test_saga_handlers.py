"""The saga's join, driven through MessageContext on real database transactions."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from events import (
    Event,
    InventoryRejected,
    InventoryReserved,
    PaymentAuthorized,
    PaymentDeclined,
    PermanentError,
    StockLine,
)
from order_service.adapters import repository
from order_service.domain.status import OrderStatus
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.order.support import deliver, orders_counted, outbox_rows, place

Sessions = async_sessionmaker[AsyncSession]


def reserved(order_id: UUID) -> InventoryReserved:
    return InventoryReserved(order_id=order_id, items=(StockLine(sku="KEYBOARD-01", quantity=1),))


def rejected(order_id: UUID) -> InventoryRejected:
    return InventoryRejected(
        order_id=order_id, missing_skus=("MONITOR-27", "MOUSE-01"), reason="insufficient stock"
    )


def authorized(order_id: UUID) -> PaymentAuthorized:
    return PaymentAuthorized(
        order_id=order_id, amount=Decimal("89.00"), currency="EUR", authorization_id="auth-1"
    )


def declined(order_id: UUID) -> PaymentDeclined:
    return PaymentDeclined(order_id=order_id, amount=Decimal("89.00"), reason="card declined")


async def status_of(sessions: Sessions, order_id: UUID) -> tuple[OrderStatus, str | None]:
    async with sessions() as session:
        order = await repository.get_order(session, order_id)
    assert order is not None
    return order.status, order.reason


async def test_both_positive_confirms_and_announces_it(sessions: Sessions) -> None:
    order_id = await place(sessions, ("KEYBOARD-01", 2), ("MOUSE-01", 1))
    confirmed_before = orders_counted("CONFIRMED")
    await deliver(sessions, reserved(order_id))
    assert await status_of(sessions, order_id) == (OrderStatus.PENDING, None)
    assert await outbox_rows(sessions, "order.confirmed") == []

    cause = await deliver(sessions, authorized(order_id))

    assert await status_of(sessions, order_id) == (OrderStatus.CONFIRMED, None)
    (confirmed,) = await outbox_rows(sessions, "order.confirmed")
    assert confirmed["causation_id"] == str(cause.id)
    assert confirmed["correlation_id"] == str(order_id)
    assert confirmed["data"] == {
        "order_id": str(order_id),
        "customer_id": "cust-42",
        "email": "buyer@example.com",
        "items": [
            {"sku": "KEYBOARD-01", "quantity": 2, "unit_price": "89.00"},
            {"sku": "MOUSE-01", "quantity": 1, "unit_price": "29.50"},
        ],
        "total": "207.50",
        "currency": "EUR",
    }
    async with sessions() as session:
        order = await repository.get_order(session, order_id)
    assert order is not None
    assert [(h.status, h.event_type, h.event_id) for h in order.history][1:] == [
        (OrderStatus.CONFIRMED, "payment.authorized", cause.id)
    ]
    assert order.updated_at == order.history[-1].at
    assert orders_counted("CONFIRMED") == confirmed_before + 1


async def test_out_of_stock_cancels_naming_the_missing_skus(sessions: Sessions) -> None:
    order_id = await place(sessions)
    await deliver(sessions, rejected(order_id))

    assert await status_of(sessions, order_id) == (
        OrderStatus.CANCELLED,
        "out of stock: MONITOR-27, MOUSE-01",
    )
    (cancelled,) = await outbox_rows(sessions, "order.cancelled")
    assert cancelled["data"] == {
        "order_id": str(order_id),
        "customer_id": "cust-42",
        "email": "buyer@example.com",
        "reason": "out of stock: MONITOR-27, MOUSE-01",
    }


async def test_a_declined_payment_cancels_with_its_reason(sessions: Sessions) -> None:
    order_id = await place(sessions)
    await deliver(sessions, reserved(order_id))
    await deliver(sessions, declined(order_id))
    assert await status_of(sessions, order_id) == (
        OrderStatus.CANCELLED,
        "payment declined: card declined",
    )
    assert len(await outbox_rows(sessions, "order.cancelled")) == 1


async def test_outcomes_after_the_end_are_recorded_and_change_nothing(sessions: Sessions) -> None:
    order_id = await place(sessions)
    await deliver(sessions, declined(order_id))
    await deliver(sessions, reserved(order_id))
    await deliver(sessions, reserved(order_id))  # the same answer again (new event id)
    await deliver(sessions, rejected(order_id))  # a contradicting one

    async with sessions() as session:
        order = await repository.get_order(session, order_id)
    assert order is not None
    assert order.status is OrderStatus.CANCELLED
    assert order.reason == "payment declined: card declined"
    assert order.inventory is not None
    assert order.inventory.positive
    assert [h.status for h in order.history] == [OrderStatus.PENDING, OrderStatus.CANCELLED]
    assert len(await outbox_rows(sessions, "order.cancelled")) == 1
    assert await outbox_rows(sessions, "order.confirmed") == []


async def test_an_event_for_an_unknown_order_can_never_succeed(sessions: Sessions) -> None:
    with pytest.raises(PermanentError):
        await deliver(sessions, reserved(uuid4()))
    assert await outbox_rows(sessions) == []


FACTORIES = [reserved, rejected, authorized, declined]


async def test_every_arrival_order_emits_exactly_one_decision(sessions: Sessions) -> None:
    arrivals = list(itertools.permutations(range(4)))
    order_ids = [await place(sessions) for _ in arrivals]
    for order_id, arrival in zip(order_ids, arrivals, strict=True):
        for index in arrival:
            await deliver(sessions, FACTORIES[index](order_id))

    decisions = await outbox_rows(sessions, "order.confirmed") + await outbox_rows(
        sessions, "order.cancelled"
    )
    assert sorted(row["correlation_id"] for row in decisions) == sorted(map(str, order_ids))
    for order_id, arrival in zip(order_ids, arrivals, strict=True):
        first_inventory = next(i for i in arrival if i in (0, 1))
        first_payment = next(i for i in arrival if i in (2, 3))
        both_positive = (first_inventory, first_payment) == (0, 2)
        expected = OrderStatus.CONFIRMED if both_positive else OrderStatus.CANCELLED
        assert (await status_of(sessions, order_id))[0] is expected, arrival


async def test_concurrent_positive_outcomes_confirm_exactly_once(sessions: Sessions) -> None:
    order_ids = [await place(sessions) for _ in range(10)]
    events: list[Event] = []
    for order_id in order_ids:
        events += [reserved(order_id), authorized(order_id)]
    # Both answers of every order at once, each in its own transaction.
    await asyncio.gather(*(deliver(sessions, event) for event in events))

    confirmed = await outbox_rows(sessions, "order.confirmed")
    assert sorted(row["correlation_id"] for row in confirmed) == sorted(map(str, order_ids))
    for order_id in order_ids:
        assert (await status_of(sessions, order_id))[0] is OrderStatus.CONFIRMED


async def test_all_four_outcomes_at_once_decide_exactly_once(sessions: Sessions) -> None:
    order_ids = [await place(sessions) for _ in range(5)]
    await asyncio.gather(
        *(deliver(sessions, make(order_id)) for order_id in order_ids for make in FACTORIES)
    )
    confirmed = await outbox_rows(sessions, "order.confirmed")
    cancelled = await outbox_rows(sessions, "order.cancelled")
    decided = sorted(row["correlation_id"] for row in confirmed + cancelled)
    assert decided == sorted(map(str, order_ids))
    for row in confirmed:
        status, _ = await status_of(sessions, UUID(row["correlation_id"]))
        assert status is OrderStatus.CONFIRMED
    for row in cancelled:
        assert await status_of(sessions, UUID(row["correlation_id"])) == (
            OrderStatus.CANCELLED,
            row["data"]["reason"],
        )
