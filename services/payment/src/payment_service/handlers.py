"""Events in: what the payment service does when an order is created or cancelled."""

from __future__ import annotations

from events import Event, PermanentError
from service_kit import EventHandler
from service_kit.sealing import SealError
from shop_contract import OrderCancelled, OrderCreated

from payment_service import service_layer
from payment_service.dependencies import Dependencies
from payment_service.unit_of_work import UnitOfWork


async def on_order_created(event: OrderCreated, uow: UnitOfWork, deps: Dependencies) -> None:
    try:
        token = deps.payment_tokens.open(event.sealed_payment_token)
    except SealError as exc:
        # Not sealed for our key: no retry can open it.
        raise PermanentError(f"the card token cannot be opened: {exc}") from exc
    await service_layer.authorize_payment(
        uow,
        deps.gateway,
        order_id=event.order_id,
        amount=event.total,
        currency=event.currency,
        token=token,
    )


async def on_order_cancelled(event: OrderCancelled, uow: UnitOfWork, deps: Dependencies) -> None:
    await service_layer.void_payment(uow, deps.gateway, order_id=event.order_id)


HANDLERS: dict[type[Event], EventHandler[UnitOfWork, Dependencies]] = {
    OrderCreated: on_order_created,
    OrderCancelled: on_order_cancelled,
}
