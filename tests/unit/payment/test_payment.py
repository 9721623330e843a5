"""The changes a payment goes through, and the events they produce."""

from decimal import Decimal
from uuid import uuid4

import pytest
from payment_service.domain import (
    InvalidTransition,
    Payment,
    PaymentStatus,
    record_authorization,
    record_decline,
    record_void,
)
from shop_contract import PaymentAuthorized, PaymentDeclined, PaymentVoided

ORDER = uuid4()


def opened() -> Payment:
    return Payment.open(ORDER, Decimal("99.90"), "EUR")


def test_recording_an_authorization_emits_payment_authorized() -> None:
    payment, event = record_authorization(opened(), "auth_42")

    assert payment.status is PaymentStatus.AUTHORIZED
    assert payment.authorization_id == "auth_42"
    assert event == PaymentAuthorized(
        order_id=ORDER, amount=Decimal("99.90"), currency="EUR", authorization_id="auth_42"
    )


def test_recording_a_decline_keeps_the_reason_and_emits_payment_declined() -> None:
    payment, event = record_decline(opened(), "insufficient funds")

    assert payment.status is PaymentStatus.DECLINED
    assert payment.reason == "insufficient funds"
    assert event == PaymentDeclined(
        order_id=ORDER, amount=Decimal("99.90"), reason="insufficient funds"
    )


def test_voiding_an_authorized_payment_emits_payment_voided() -> None:
    authorized, _ = record_authorization(opened(), "auth_42")

    payment, event = record_void(authorized)

    assert payment.status is PaymentStatus.VOIDED
    assert payment.authorization_id == "auth_42"
    assert event == PaymentVoided(order_id=ORDER, amount=Decimal("99.90"))


def test_a_gateway_answer_applies_only_to_a_pending_payment() -> None:
    authorized, _ = record_authorization(opened(), "auth_1")

    with pytest.raises(InvalidTransition):
        record_authorization(authorized, "auth_2")
    with pytest.raises(InvalidTransition):
        record_decline(Payment.cancelled_before_order(ORDER), "card declined")


@pytest.mark.parametrize(
    "payment",
    [
        Payment.open(ORDER, Decimal("1.00"), "EUR"),
        Payment.cancelled_before_order(ORDER),
        record_decline(Payment.open(ORDER, Decimal("1.00"), "EUR"), "card declined")[0],
    ],
)
def test_only_an_authorized_payment_can_be_voided(payment: Payment) -> None:
    with pytest.raises(InvalidTransition):
        record_void(payment)
