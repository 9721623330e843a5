"""``decide``: what an order becomes from each side's answer (pure)."""

from __future__ import annotations

import pytest
from order_service.domain.outcomes import Outcome
from order_service.domain.saga import Cancel, Confirm, decide
from order_service.domain.status import OrderStatus

from tests.unit.order.factories import AUTHORIZED, DECLINED, REJECTED, RESERVED

INVENTORY_ANSWERS = [None, RESERVED, REJECTED]
PAYMENT_ANSWERS = [None, AUTHORIZED, DECLINED]


def test_both_positive_confirms() -> None:
    assert decide(OrderStatus.PENDING, RESERVED, AUTHORIZED) == Confirm()


def test_stock_rejection_cancels_without_waiting_for_payment() -> None:
    assert decide(OrderStatus.PENDING, REJECTED, None) == Cancel(
        "out of stock: MONITOR-27, MOUSE-01"
    )


def test_payment_decline_cancels_without_waiting_for_stock() -> None:
    assert decide(OrderStatus.PENDING, None, DECLINED) == Cancel("payment declined: card declined")


@pytest.mark.parametrize("inventory", [RESERVED, REJECTED])
def test_decline_cancels_whatever_inventory_said(inventory: Outcome) -> None:
    decision = decide(OrderStatus.PENDING, inventory, DECLINED)
    assert isinstance(decision, Cancel)


def test_both_negative_gives_inventorys_reason() -> None:
    assert decide(OrderStatus.PENDING, REJECTED, DECLINED) == Cancel(
        "out of stock: MONITOR-27, MOUSE-01"
    )


@pytest.mark.parametrize(
    ("inventory", "payment"), [(None, None), (RESERVED, None), (None, AUTHORIZED)]
)
def test_waits_while_a_positive_side_is_missing(
    inventory: Outcome | None, payment: Outcome | None
) -> None:
    assert decide(OrderStatus.PENDING, inventory, payment) is None


@pytest.mark.parametrize("status", [OrderStatus.CONFIRMED, OrderStatus.CANCELLED])
@pytest.mark.parametrize("inventory", INVENTORY_ANSWERS)
@pytest.mark.parametrize("payment", PAYMENT_ANSWERS)
def test_a_final_order_never_changes(
    status: OrderStatus, inventory: Outcome | None, payment: Outcome | None
) -> None:
    assert decide(status, inventory, payment) is None


@pytest.mark.parametrize("inventory", INVENTORY_ANSWERS)
@pytest.mark.parametrize("payment", PAYMENT_ANSWERS)
def test_decision_table_for_pending_orders(
    inventory: Outcome | None, payment: Outcome | None
) -> None:
    decision = decide(OrderStatus.PENDING, inventory, payment)
    negatives = [o for o in (inventory, payment) if o is not None and not o.positive]
    if negatives:
        assert decision == Cancel(negatives[0].reason or "")
    elif inventory is not None and payment is not None:
        assert decision == Confirm()
    else:
        assert decision is None
