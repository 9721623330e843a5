"""A payment: one per order, its status, and the changes it can go through.

    (no payment) ──order.created──▶ PENDING ──gateway──▶ AUTHORIZED ──order.cancelled──▶ VOIDED
                                                    └──▶ DECLINED
    (no payment) ──order.cancelled──▶ CANCELLED (tombstone: a late order.created must not charge)

PENDING only lives inside the transaction handling order.created: that transaction
either resolves it (AUTHORIZED/DECLINED) or rolls back, so no committed row is ever
PENDING. CANCELLED is never shown by the API.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from shop_contract import PaymentAuthorized, PaymentDeclined, PaymentVoided


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    VOIDED = "VOIDED"
    CANCELLED = "CANCELLED"


PUBLIC_STATUSES = frozenset(
    {PaymentStatus.AUTHORIZED, PaymentStatus.DECLINED, PaymentStatus.VOIDED}
)


class InvalidTransition(Exception):
    """A change the payment's current status does not allow (a bug, not bad input)."""


@dataclass(frozen=True, slots=True)
class Payment:
    order_id: UUID
    status: PaymentStatus
    amount: Decimal | None = None
    currency: str | None = None
    reason: str | None = None
    authorization_id: str | None = None

    @classmethod
    def open(cls, order_id: UUID, amount: Decimal, currency: str) -> Payment:
        """The payment of a newly seen order, before the gateway has answered."""
        return cls(order_id, PaymentStatus.PENDING, amount=amount, currency=currency)

    @classmethod
    def cancelled_before_order(cls, order_id: UUID) -> Payment:
        """Tombstone: the order was cancelled before its order.created got here."""
        return cls(order_id, PaymentStatus.CANCELLED)

    @property
    def is_public(self) -> bool:
        return self.status in PUBLIC_STATUSES


def record_authorization(
    payment: Payment, authorization_id: str
) -> tuple[Payment, PaymentAuthorized]:
    amount, currency = _pending_charge(payment)
    authorized = replace(
        payment, status=PaymentStatus.AUTHORIZED, authorization_id=authorization_id
    )
    return authorized, PaymentAuthorized(
        order_id=payment.order_id,
        amount=amount,
        currency=currency,
        authorization_id=authorization_id,
    )


def record_decline(payment: Payment, reason: str) -> tuple[Payment, PaymentDeclined]:
    amount, _ = _pending_charge(payment)
    declined = replace(payment, status=PaymentStatus.DECLINED, reason=reason)
    return declined, PaymentDeclined(order_id=payment.order_id, amount=amount, reason=reason)


def record_void(payment: Payment) -> tuple[Payment, PaymentVoided]:
    if payment.status is not PaymentStatus.AUTHORIZED or payment.amount is None:
        raise InvalidTransition(f"cannot void a {payment.status} payment")
    voided = replace(payment, status=PaymentStatus.VOIDED)
    return voided, PaymentVoided(order_id=payment.order_id, amount=payment.amount)


def _pending_charge(payment: Payment) -> tuple[Decimal, str]:
    if payment.status is not PaymentStatus.PENDING:
        raise InvalidTransition(
            f"the gateway's answer is for a PENDING payment, not {payment.status}"
        )
    if payment.amount is None or payment.currency is None:
        raise InvalidTransition("a PENDING payment has an amount and a currency")
    return payment.amount, payment.currency
