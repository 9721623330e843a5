"""Events in: one email per order and kind out.

Each kind of email is independent of the others: ``order.cancelled`` handled
before a (retried) ``order.created`` still sends both, once each; nothing here
assumes the order events arrive in order.
"""

from __future__ import annotations

from events import Event
from service_kit import EventHandler
from shop_contract import OrderCancelled, OrderConfirmed, OrderCreated

from email_service import service_layer
from email_service.dependencies import Dependencies
from email_service.domain.emails import (
    OrderEmail,
    order_cancelled_email,
    order_confirmed_email,
    order_received_email,
)
from email_service.unit_of_work import UnitOfWork


async def on_order_created(event: OrderCreated, uow: UnitOfWork, deps: Dependencies) -> None:
    await _send(order_received_email(event), uow, deps)


async def on_order_confirmed(event: OrderConfirmed, uow: UnitOfWork, deps: Dependencies) -> None:
    await _send(order_confirmed_email(event), uow, deps)


async def on_order_cancelled(event: OrderCancelled, uow: UnitOfWork, deps: Dependencies) -> None:
    await _send(order_cancelled_email(event), uow, deps)


async def _send(email: OrderEmail, uow: UnitOfWork, deps: Dependencies) -> None:
    await service_layer.send_once(uow, deps, email)


HANDLERS: dict[type[Event], EventHandler[UnitOfWork, Dependencies]] = {
    OrderCreated: on_order_created,
    OrderConfirmed: on_order_confirmed,
    OrderCancelled: on_order_cancelled,
}
