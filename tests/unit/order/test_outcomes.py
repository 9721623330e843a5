"""How each side's answer reads, and the reason a cancellation gives."""

from __future__ import annotations

import pytest
from order_service.domain.outcomes import (
    Outcome,
    Side,
    payment_authorized,
    payment_declined,
    stock_rejected,
    stock_reserved,
)


def test_stock_rejection_names_the_missing_skus_in_order() -> None:
    outcome = stock_rejected(["SKU-A", "SKU-B"], "insufficient stock")
    assert outcome == Outcome(Side.INVENTORY, positive=False, reason="out of stock: SKU-A, SKU-B")


def test_stock_rejection_without_missing_skus_still_explains() -> None:
    assert stock_rejected([], "warehouse closed").reason == "stock not reserved: warehouse closed"
    assert stock_rejected([]).reason == "stock not reserved: no reason given"


def test_payment_decline_carries_the_gateways_reason() -> None:
    assert payment_declined("insufficient funds").reason == "payment declined: insufficient funds"


def test_positive_outcomes_have_no_reason() -> None:
    assert stock_reserved() == Outcome(Side.INVENTORY, positive=True)
    assert payment_authorized() == Outcome(Side.PAYMENT, positive=True)


def test_a_negative_outcome_needs_a_reason_and_a_positive_one_has_none() -> None:
    with pytest.raises(ValueError):
        Outcome(Side.PAYMENT, positive=False)
    with pytest.raises(ValueError):
        Outcome(Side.PAYMENT, positive=True, reason="why?")
