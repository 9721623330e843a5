"""What the payment service does when an order is created or cancelled.

Each handler runs inside the consumer's transaction (which also holds the inbox
claim), so the payment's new status and the event it emits commit together.
"""

from __future__ import annotations

from typing import Any

import structlog
from events import Event, Handler, MessageContext, OrderCancelled, OrderCreated
from service_kit import Runtime

from payment_service.adapters.gateway import (
    Authorized,
    GatewayUnavailable,
    PaymentGateway,
)
from payment_service.adapters.repository import PaymentRepository
from payment_service.domain import (
    Authorize,
    Ignore,
    Payment,
    Void,
    decide_on_order_cancelled,
    decide_on_order_created,
    record_authorization,
    record_decline,
    record_void,
)
from payment_service.metrics import AUTHORIZATIONS

log = structlog.get_logger(__name__)

GATEWAY_RESOURCE = "payment_gateway"


class PaymentHandlers:
    def __init__(self, gateway: PaymentGateway) -> None:
        self._gateway = gateway

    async def on_order_created(self, event: OrderCreated, ctx: MessageContext) -> None:
        payments = PaymentRepository(ctx.session)
        payment, _ = await payments.open(Payment.open(event.order_id, event.total, event.currency))
        decision = decide_on_order_created(payment)
        if isinstance(decision, Ignore):
            log.info("payment.skipped", why=decision.why)
            return
        await self._authorize(payment, decision, event.payment_token, payments, ctx)

    async def _authorize(
        self,
        payment: Payment,
        decision: Authorize,
        token: str,
        payments: PaymentRepository,
        ctx: MessageContext,
    ) -> None:
        try:
            answer = await self._gateway.authorize(
                order_id=payment.order_id,
                amount=decision.amount,
                currency=decision.currency,
                token=token,
            )
        except GatewayUnavailable as exc:
            # Rolling back drops the PENDING row; the consumer retries the event.
            AUTHORIZATIONS.labels("unavailable").inc()
            log.warning("payment.gateway_unavailable", error=str(exc), retries=ctx.retries)
            raise
        follow_up: Event
        if isinstance(answer, Authorized):
            AUTHORIZATIONS.labels("authorized").inc()
            payment, follow_up = record_authorization(payment, answer.authorization_id)
            log.info(
                "payment.authorized",
                amount=str(decision.amount),
                currency=decision.currency,
                authorization_id=answer.authorization_id,
            )
        else:
            AUTHORIZATIONS.labels("declined").inc()
            payment, follow_up = record_decline(payment, answer.reason)
            log.info("payment.declined", amount=str(decision.amount), reason=answer.reason)
        await payments.save(payment)
        await ctx.emit(follow_up)

    async def on_order_cancelled(self, event: OrderCancelled, ctx: MessageContext) -> None:
        payments = PaymentRepository(ctx.session)
        payment, opened = await payments.open(Payment.cancelled_before_order(event.order_id))
        if opened:
            log.info("payment.cancelled_before_order")
            return
        decision = decide_on_order_cancelled(payment)
        if not isinstance(decision, Void):
            log.info("payment.void_skipped", why=decision.why)
            return
        # Voiding first: if the gateway fails, the rollback keeps AUTHORIZED and we retry.
        await self._gateway.void(decision.authorization_id)
        payment, follow_up = record_void(payment)
        await payments.save(payment)
        await ctx.emit(follow_up)
        log.info(
            "payment.voided", amount=str(payment.amount), authorization_id=decision.authorization_id
        )


def gateway_of(runtime: Runtime) -> PaymentGateway:
    gateway: PaymentGateway = runtime.resources[GATEWAY_RESOURCE]
    return gateway


def build_handlers(runtime: Runtime) -> dict[type[Event], Handler[Any]]:
    handlers = PaymentHandlers(gateway_of(runtime))
    return {
        OrderCreated: handlers.on_order_created,
        OrderCancelled: handlers.on_order_cancelled,
    }
