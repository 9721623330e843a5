"""The saga's join: inventory's and payment's answers, in any order, any number of times.

Each handler locks the order row, records its side's answer, and lets the domain
decide; a decision is written with its history entry and its event in the same
transaction as the inbox claim.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from events import (
    Event,
    Handler,
    InventoryRejected,
    InventoryReserved,
    MessageContext,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    PaymentAuthorized,
    PaymentDeclined,
    PermanentError,
)
from service_kit import Runtime

from order_service.adapters import repository
from order_service.adapters.metrics import count_after_commit
from order_service.domain import outcomes
from order_service.domain.order import Order
from order_service.domain.outcomes import Outcome
from order_service.domain.status import OrderStatus

log = structlog.get_logger(__name__)


async def on_stock_reserved(event: InventoryReserved, ctx: MessageContext) -> None:
    await join(ctx, event.order_id, outcomes.stock_reserved())


async def on_stock_rejected(event: InventoryRejected, ctx: MessageContext) -> None:
    await join(ctx, event.order_id, outcomes.stock_rejected(event.missing_skus, event.reason))


async def on_payment_authorized(event: PaymentAuthorized, ctx: MessageContext) -> None:
    await join(ctx, event.order_id, outcomes.payment_authorized())


async def on_payment_declined(event: PaymentDeclined, ctx: MessageContext) -> None:
    await join(ctx, event.order_id, outcomes.payment_declined(event.reason))


async def join(ctx: MessageContext, order_id: UUID, outcome: Outcome) -> None:
    order = await repository.get_order(ctx.session, order_id, lock=True)
    if order is None:
        # Orders are published only after they commit, so this never will exist.
        raise PermanentError(f"no order {order_id}")
    earlier = order.outcome_of(outcome.side)
    if earlier is not None:
        if earlier != outcome:
            log.warning(
                "saga.conflicting_outcome",
                side=outcome.side.value,
                kept=_describe(earlier),
                ignored=_describe(outcome),
            )
        else:
            log.info("saga.outcome_already_known", side=outcome.side.value)
        return
    change = order.record(
        outcome,
        at=datetime.now(UTC),
        event_type=ctx.envelope.type,
        event_id=ctx.envelope.id,
    )
    await repository.save_progress(ctx.session, order, change)
    if change is None:
        log.info(
            "saga.outcome_recorded",
            side=outcome.side.value,
            outcome=_describe(outcome),
            status=order.status.value,
        )
        return
    await ctx.emit(_announcement(order))
    count_after_commit(ctx.session, order.status)
    if order.status is OrderStatus.CONFIRMED:
        log.info("order.confirmed", total=str(order.total))
    else:
        log.info("order.cancelled", reason=order.reason)


def _announcement(order: Order) -> Event:
    if order.status is OrderStatus.CONFIRMED:
        return OrderConfirmed(
            order_id=order.id,
            customer_id=order.customer_id,
            email=order.email,
            items=tuple(
                OrderLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
                for line in order.lines
            ),
            total=order.total,
            currency=order.currency,
        )
    assert order.reason is not None
    return OrderCancelled(
        order_id=order.id,
        customer_id=order.customer_id,
        email=order.email,
        reason=order.reason,
    )


def _describe(outcome: Outcome) -> str:
    return "positive" if outcome.positive else f"negative ({outcome.reason})"


def build_handlers(runtime: Runtime) -> dict[type[Event], Handler[Any]]:
    return {
        InventoryReserved: on_stock_reserved,
        InventoryRejected: on_stock_rejected,
        PaymentAuthorized: on_payment_authorized,
        PaymentDeclined: on_payment_declined,
    }
