"""The saga's join, delivered through the service's handlers on real database transactions."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from uuid import UUID, uuid4

import pytest
from events import Event, PermanentError
from events.testing import deliver
from order_service.domain.status import OrderStatus
from order_service.service import SERVICE
from shop_contract import PaymentAuthorized
from shop_contract.testing import (
    inventory_rejected,
    inventory_reserved,
    payment_authorized,
    payment_declined,
)

from tests.integration.order.support import (
    CONSUMER,
    DEPENDENCIES,
    Sessions,
    emitted,
    handle,
    order_of,
    orders_counted,
    place,
)


def rejected(order_id: UUID) -> Event:
    return inventory_rejected(order_id, missing=("MONITOR-27", "MOUSE-01"))


# Each side's two answers: inventory's (0, 1), then payment's (2, 3).
FACTORIES: list[Callable[[UUID], Event]] = [
    inventory_reserved,
    rejected,
    payment_authorized,
    payment_declined,
]


async def status_of(sessions: Sessions, order_id: UUID) -> tuple[OrderStatus, str | None]:
    order = await order_of(sessions, order_id)
    return order.status, order.reason


async def test_both_positive_confirms_and_announces_it(sessions: Sessions) -> None:
    order_id = await place(sessions, ("KEYBOARD-01", 2), ("MOUSE-01", 1))
    confirmed_before = orders_counted("CONFIRMED")
    await handle(sessions, inventory_reserved(order_id))
    assert await status_of(sessions, order_id) == (OrderStatus.PENDING, None)
    assert await emitted(sessions, "order.confirmed") == []

    cause = await deliver(
        sessions,
        SERVICE.handler_for(PaymentAuthorized, DEPENDENCIES),
        payment_authorized(order_id, amount="207.50"),
        consumer=CONSUMER,
    )

    assert cause.outcome == "handled"
    assert await status_of(sessions, order_id) == (OrderStatus.CONFIRMED, None)
    (confirmed,) = await emitted(sessions, "order.confirmed")
    assert confirmed.causation_id == cause.envelope.id
    assert confirmed.correlation_id == str(order_id)
    assert confirmed.data == {
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
    order = await order_of(sessions, order_id)
    assert [(h.status, h.event_type, h.event_id) for h in order.history][1:] == [
        (OrderStatus.CONFIRMED, "payment.authorized", cause.envelope.id)
    ]
    assert order.updated_at == order.history[-1].at
    assert orders_counted("CONFIRMED") == confirmed_before + 1


async def test_the_same_envelope_again_is_a_duplicate_and_changes_nothing(
    sessions: Sessions,
) -> None:
    order_id = await place(sessions)
    event = inventory_reserved(order_id)
    first = await handle(sessions, event)

    again = await handle(sessions, event, envelope=first.envelope)

    assert (first.outcome, again.outcome) == ("handled", "duplicate")
    order = await order_of(sessions, order_id)
    assert order.inventory is not None
    assert order.status is OrderStatus.PENDING
    assert [h.status for h in order.history] == [OrderStatus.PENDING]


async def test_out_of_stock_cancels_naming_the_missing_skus(sessions: Sessions) -> None:
    order_id = await place(sessions)
    cancelled_before = orders_counted("CANCELLED")
    await handle(sessions, rejected(order_id))

    assert await status_of(sessions, order_id) == (
        OrderStatus.CANCELLED,
        "out of stock: MONITOR-27, MOUSE-01",
    )
    (cancelled,) = await emitted(sessions, "order.cancelled")
    assert cancelled.data == {
        "order_id": str(order_id),
        "customer_id": "cust-42",
        "email": "buyer@example.com",
        "reason": "out of stock: MONITOR-27, MOUSE-01",
    }
    assert orders_counted("CANCELLED") == cancelled_before + 1


async def test_a_declined_payment_cancels_with_its_reason(sessions: Sessions) -> None:
    order_id = await place(sessions)
    await handle(sessions, inventory_reserved(order_id))
    await handle(sessions, payment_declined(order_id, reason="card declined"))
    assert await status_of(sessions, order_id) == (
        OrderStatus.CANCELLED,
        "payment declined: card declined",
    )
    assert len(await emitted(sessions, "order.cancelled")) == 1


async def test_outcomes_after_the_end_are_recorded_and_change_nothing(sessions: Sessions) -> None:
    order_id = await place(sessions)
    await handle(sessions, payment_declined(order_id, reason="card declined"))
    await handle(sessions, inventory_reserved(order_id))
    await handle(sessions, inventory_reserved(order_id))  # the same answer again (new event id)
    await handle(sessions, rejected(order_id))  # a contradicting one

    order = await order_of(sessions, order_id)
    assert order.status is OrderStatus.CANCELLED
    assert order.reason == "payment declined: card declined"
    assert order.inventory is not None
    assert order.inventory.positive
    assert [h.status for h in order.history] == [OrderStatus.PENDING, OrderStatus.CANCELLED]
    assert len(await emitted(sessions, "order.cancelled")) == 1
    assert await emitted(sessions, "order.confirmed") == []


async def test_an_event_for_an_unknown_order_can_never_succeed(sessions: Sessions) -> None:
    with pytest.raises(PermanentError):
        await handle(sessions, inventory_reserved(uuid4()))
    assert await emitted(sessions) == []


async def test_every_arrival_order_emits_exactly_one_decision(sessions: Sessions) -> None:
    arrivals = list(itertools.permutations(range(4)))
    order_ids = [await place(sessions) for _ in arrivals]
    for order_id, arrival in zip(order_ids, arrivals, strict=True):
        for index in arrival:
            await handle(sessions, FACTORIES[index](order_id))

    decisions = await emitted(sessions, "order.confirmed") + await emitted(
        sessions, "order.cancelled"
    )
    assert sorted(e.correlation_id for e in decisions) == sorted(map(str, order_ids))
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
        events += [inventory_reserved(order_id), payment_authorized(order_id)]
    # Both answers of every order at once, each in its own transaction.
    await asyncio.gather(*(handle(sessions, event) for event in events))

    confirmed = await emitted(sessions, "order.confirmed")
    assert sorted(e.correlation_id for e in confirmed) == sorted(map(str, order_ids))
    for order_id in order_ids:
        assert (await status_of(sessions, order_id))[0] is OrderStatus.CONFIRMED


async def test_all_four_outcomes_at_once_decide_exactly_once(sessions: Sessions) -> None:
    order_ids = [await place(sessions) for _ in range(5)]
    await asyncio.gather(
        *(handle(sessions, make(order_id)) for order_id in order_ids for make in FACTORIES)
    )
    confirmed = await emitted(sessions, "order.confirmed")
    cancelled = await emitted(sessions, "order.cancelled")
    decided = sorted(e.correlation_id for e in confirmed + cancelled)
    assert decided == sorted(map(str, order_ids))
    for envelope in confirmed:
        status, _ = await status_of(sessions, UUID(envelope.correlation_id))
        assert status is OrderStatus.CONFIRMED
    for envelope in cancelled:
        assert await status_of(sessions, UUID(envelope.correlation_id)) == (
            OrderStatus.CANCELLED,
            envelope.data["reason"],
        )
