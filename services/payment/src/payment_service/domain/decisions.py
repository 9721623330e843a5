"""What to do with an order event, given the order's payment as it stands.

The handlers first make sure a payment row exists and is locked (a new PENDING
one for order.created, a CANCELLED tombstone for order.cancelled, unless the
order already has one), then ask these functions; events may come twice or in
either order, so only the payment's status decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from payment_service.domain.payment import Payment, PaymentStatus


@dataclass(frozen=True, slots=True)
class Authorize:
    """Ask the gateway to authorize this amount."""

    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Void:
    """Release this authorization at the gateway."""

    authorization_id: str


@dataclass(frozen=True, slots=True)
class Ignore:
    """Nothing to do; ``why`` is for the log."""

    why: str


def decide_on_order_created(payment: Payment) -> Authorize | Ignore:
    match payment:
        case Payment(
            status=PaymentStatus.PENDING, amount=Decimal() as amount, currency=str() as currency
        ):
            return Authorize(amount, currency)
        case Payment(status=PaymentStatus.CANCELLED):
            # Cancelled before we saw it: charging now would never be voided.
            return Ignore("order already cancelled")
        case _:
            return Ignore(f"payment already {payment.status}")


def decide_on_order_cancelled(payment: Payment) -> Void | Ignore:
    match payment:
        case Payment(status=PaymentStatus.AUTHORIZED, authorization_id=str() as authorization_id):
            return Void(authorization_id)
        case Payment(status=PaymentStatus.CANCELLED):
            return Ignore("cancellation already recorded")
        case _:
            return Ignore(f"nothing to void: payment {payment.status}")
