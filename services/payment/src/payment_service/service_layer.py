"""The payment service's use cases. Each runs in a unit of work its caller opened
(the consumer, per delivery; a route, per request), so the payment's new status
and the event it causes commit together."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import structlog
from shop_contract import OrderEvent

from payment_service.adapters.gateway import Authorized, GatewayUnavailable, PaymentGateway
from payment_service.adapters.metrics import AUTHORIZATIONS, ORPHANS_RELEASED
from payment_service.domain import (
    Ignore,
    Payment,
    Void,
    decide_on_order_cancelled,
    decide_on_order_created,
    record_authorization,
    record_decline,
    record_void,
)
from payment_service.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)


async def authorize_payment(
    uow: UnitOfWork,
    gateway: PaymentGateway,
    *,
    order_id: UUID,
    amount: Decimal,
    currency: str,
    token: str,
) -> None:
    """Hold the order's total at the gateway, once per order (unless it was cancelled)."""
    payment, _ = await uow.payments.open(Payment.open(order_id, amount, currency))
    decision = decide_on_order_created(payment)
    if isinstance(decision, Ignore):
        log.info("payment.skipped", why=decision.why)
        return
    try:
        answer = await gateway.authorize(
            order_id=order_id, amount=decision.amount, currency=decision.currency, token=token
        )
    except GatewayUnavailable as exc:
        # Rolling back drops the PENDING row; the consumer retries the event.
        AUTHORIZATIONS.labels("unavailable").inc()
        log.warning("payment.gateway_unavailable", error=str(exc))
        raise
    follow_up: OrderEvent
    if isinstance(answer, Authorized):
        uow.after_commit(AUTHORIZATIONS.labels("authorized").inc)
        payment, follow_up = record_authorization(payment, answer.authorization_id)
        log.info(
            "payment.authorized",
            amount=str(decision.amount),
            currency=decision.currency,
            authorization_id=answer.authorization_id,
        )
    else:
        uow.after_commit(AUTHORIZATIONS.labels("declined").inc)
        payment, follow_up = record_decline(payment, answer.reason)
        log.info("payment.declined", amount=str(decision.amount), reason=answer.reason)
    await uow.payments.save(payment)
    uow.emit(follow_up)


async def void_payment(uow: UnitOfWork, gateway: PaymentGateway, *, order_id: UUID) -> None:
    """Release the order's authorization; a cancellation seen first leaves a tombstone."""
    payment, opened = await uow.payments.open(Payment.cancelled_before_order(order_id))
    if opened:
        # We never saw an authorization, but the gateway may have made one whose
        # answer was lost (a timeout): release whatever the order's key holds, so
        # a cancelled order keeps no hold on the card. A failure here rolls the
        # tombstone back and the cancellation is retried.
        released = await gateway.release(order_id=order_id)
        if released is not None:
            uow.after_commit(ORPHANS_RELEASED.inc)
        log.info("payment.cancelled_before_order", released=released)
        return
    decision = decide_on_order_cancelled(payment)
    if not isinstance(decision, Void):
        log.info("payment.void_skipped", why=decision.why)
        return
    # Voiding first: if the gateway fails, the rollback keeps AUTHORIZED and we retry.
    await gateway.void(decision.authorization_id)
    payment, follow_up = record_void(payment)
    await uow.payments.save(payment)
    uow.emit(follow_up)
    log.info(
        "payment.voided", amount=str(payment.amount), authorization_id=decision.authorization_id
    )


async def payment_of(uow: UnitOfWork, order_id: UUID) -> Payment | None:
    """The order's payment as callers may see it (a tombstone is not a payment)."""
    payment = await uow.payments.get(order_id)
    return payment if payment is not None and payment.is_public else None
