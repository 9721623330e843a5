"""What the payment service decides for each order event, given the payment's status."""

from decimal import Decimal
from uuid import uuid4

import pytest
from payment_service.domain import (
    Authorize,
    Ignore,
    Payment,
    PaymentStatus,
    Void,
    decide_on_order_cancelled,
    decide_on_order_created,
)

ORDER = uuid4()


def payment(status: PaymentStatus, **fields: object) -> Payment:
    defaults: dict[str, object] = {"amount": Decimal("12.50"), "currency": "EUR"}
    if status in (PaymentStatus.AUTHORIZED, PaymentStatus.VOIDED):
        defaults["authorization_id"] = "auth_1"
    if status is PaymentStatus.DECLINED:
        defaults["reason"] = "card declined"
    if status is PaymentStatus.CANCELLED:
        defaults = {}
    return Payment(ORDER, status, **{**defaults, **fields})  # type: ignore[arg-type]


def test_a_newly_opened_payment_is_authorized_for_the_order_total() -> None:
    opened = Payment.open(ORDER, Decimal("12.50"), "EUR")

    assert decide_on_order_created(opened) == Authorize(Decimal("12.50"), "EUR")


def test_order_created_after_its_cancellation_charges_nothing() -> None:
    decision = decide_on_order_created(Payment.cancelled_before_order(ORDER))

    assert decision == Ignore("order already cancelled")


@pytest.mark.parametrize(
    "status", [PaymentStatus.AUTHORIZED, PaymentStatus.DECLINED, PaymentStatus.VOIDED]
)
def test_order_created_again_after_a_decision_changes_nothing(status: PaymentStatus) -> None:
    assert isinstance(decide_on_order_created(payment(status)), Ignore)


def test_cancelling_an_authorized_order_voids_its_authorization() -> None:
    assert decide_on_order_cancelled(payment(PaymentStatus.AUTHORIZED)) == Void("auth_1")


@pytest.mark.parametrize(
    "status", [PaymentStatus.DECLINED, PaymentStatus.VOIDED, PaymentStatus.CANCELLED]
)
def test_cancelling_without_a_live_authorization_voids_nothing(status: PaymentStatus) -> None:
    assert isinstance(decide_on_order_cancelled(payment(status)), Ignore)


def test_only_real_payments_are_public() -> None:
    public = {status for status in PaymentStatus if payment(status).is_public}

    assert public == {PaymentStatus.AUTHORIZED, PaymentStatus.DECLINED, PaymentStatus.VOIDED}
