"""The order aggregate: totals, and the saga's join over every arrival order."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from order_service.domain.catalogue import OrderLine
from order_service.domain.order import Order
from order_service.domain.outcomes import Outcome, Side
from order_service.domain.status import OrderStatus

from tests.unit.order.factories import (
    AUTHORIZED,
    DECLINED,
    EVENT_TYPES,
    REJECTED,
    RESERVED,
    T0,
    deliver,
    new_order,
)

ALL_OUTCOMES = (RESERVED, REJECTED, AUTHORIZED, DECLINED)


def test_a_placed_order_is_pending_and_totals_its_lines() -> None:
    order = new_order(
        OrderLine("KEYBOARD-01", 2, Decimal("89.00")),
        OrderLine("USB-C-HUB", 3, Decimal("39.90")),
    )
    assert order.status is OrderStatus.PENDING
    assert order.total == Decimal("297.70")
    assert str(order.total) == "297.70"
    assert order.currency == "EUR"
    assert order.reason is None
    assert order.created_at == order.updated_at == T0


def test_the_largest_order_total_fits_the_money_column() -> None:
    lines = [OrderLine(f"SKU-{i}", 1000, Decimal("249.00")) for i in range(50)]
    assert new_order(*lines).total == Decimal("12450000.00")


def test_an_order_needs_lines() -> None:
    with pytest.raises(ValueError):
        Order.place(
            id=uuid4(),
            customer_id="c",
            email="a@example.com",
            lines=(),
            at=T0,
            deadline=timedelta(minutes=10),
        )


def test_confirmation_is_recorded_with_its_cause() -> None:
    order = new_order()
    assert deliver(order, RESERVED, minute=1) is None
    assert (order.status, order.reason) == (OrderStatus.PENDING, None)
    assert order.updated_at == T0 + timedelta(minutes=1)
    cause = uuid4()
    change = deliver(order, AUTHORIZED, minute=2, event_id=cause)
    assert change is not None
    assert (change.status, change.event_type, change.event_id) == (
        OrderStatus.CONFIRMED,
        "payment.authorized",
        cause,
    )
    assert change.at == order.updated_at == T0 + timedelta(minutes=2)
    assert order.history == [change]
    assert (order.status, order.reason) == (OrderStatus.CONFIRMED, None)


def test_cancellation_keeps_the_reason() -> None:
    order = new_order()
    change = deliver(order, DECLINED)
    assert change is not None
    assert change.status is OrderStatus.CANCELLED
    assert order.reason == "payment declined: card declined"


def test_outcome_after_final_is_recorded_but_changes_nothing() -> None:
    order = new_order()
    deliver(order, REJECTED, minute=1)
    assert deliver(order, AUTHORIZED, minute=2) is None
    assert order.payment == AUTHORIZED
    assert order.status is OrderStatus.CANCELLED
    assert order.reason == "out of stock: MONITOR-27, MOUSE-01"
    assert len(order.history) == 1


def test_a_side_answers_once_the_first_answer_stands() -> None:
    order = new_order()
    deliver(order, RESERVED, minute=1)
    assert deliver(order, REJECTED, minute=2) is None
    assert order.inventory == RESERVED
    assert order.status is OrderStatus.PENDING
    assert order.updated_at == T0 + timedelta(minutes=1)


def _expected(sequence: tuple[Outcome, ...]) -> tuple[OrderStatus, str | None]:
    """Oracle written independently of ``decide``: first answer of each side counts;
    both positive → confirmed, else the earliest of the counted refusals."""
    first: dict[Side, tuple[int, Outcome]] = {}
    for position, outcome in enumerate(sequence):
        first.setdefault(outcome.side, (position, outcome))
    counted = sorted(first.values(), key=lambda item: item[0])
    refusals = [outcome for _, outcome in counted if not outcome.positive]
    if refusals:
        return OrderStatus.CANCELLED, refusals[0].reason
    if len(counted) == 2:
        return OrderStatus.CONFIRMED, None
    return OrderStatus.PENDING, None


@pytest.mark.parametrize(
    "sequence",
    list(itertools.permutations(ALL_OUTCOMES)),
    ids=lambda seq: "→".join(EVENT_TYPES[o] for o in seq),
)
def test_every_arrival_order_of_the_four_outcomes(sequence: tuple[Outcome, ...]) -> None:
    order = new_order()
    changes = [deliver(order, outcome, minute=i) for i, outcome in enumerate(sequence, 1)]
    status, reason = _expected(sequence)
    assert (order.status, order.reason) == (status, reason)
    made = [c for c in changes if c is not None]
    assert len(made) == 1, "exactly one status change, whatever the order"
    assert order.history == made


def _arrivals() -> list[tuple[Outcome, ...]]:
    """One answer per side, each delivered once or twice, in every order."""
    sequences: set[tuple[Outcome, ...]] = set()
    for inventory, payment in itertools.product((RESERVED, REJECTED), (AUTHORIZED, DECLINED)):
        for copies in itertools.product((1, 2), repeat=2):
            bag = [inventory] * copies[0] + [payment] * copies[1]
            sequences.update(itertools.permutations(bag))
    return sorted(sequences, key=lambda s: [EVENT_TYPES[o] for o in s])


@pytest.mark.parametrize(
    "sequence", _arrivals(), ids=lambda seq: "→".join(EVENT_TYPES[o] for o in seq)
)
def test_realistic_arrivals_with_duplicates(sequence: tuple[Outcome, ...]) -> None:
    order = new_order()
    changes = [deliver(order, outcome, minute=i) for i, outcome in enumerate(sequence, 1)]
    made = [c for c in changes if c is not None]
    assert len(made) == 1
    inventory = next(o for o in sequence if o.side is Side.INVENTORY)
    payment = next(o for o in sequence if o.side is Side.PAYMENT)
    if inventory.positive and payment.positive:
        assert order.status is OrderStatus.CONFIRMED
        # Confirmed by whichever side answered last of the two.
        second = next(i for i, o in enumerate(sequence) if o.side is not sequence[0].side)
        assert changes[second] is not None
    else:
        assert order.status is OrderStatus.CANCELLED
        first_refusal = next(o for o in sequence if not o.positive)
        assert order.reason == first_refusal.reason
        assert made[0].event_type == EVENT_TYPES[first_refusal]
    assert order.inventory == inventory
    assert order.payment == payment
