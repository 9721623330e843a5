"""Events in: what the inventory does when an order is created, confirmed or cancelled."""

from __future__ import annotations

from events import Event
from service_kit import EventHandler
from shop_contract import OrderCancelled, OrderConfirmed, OrderCreated

from inventory_service import service_layer
from inventory_service.dependencies import Dependencies
from inventory_service.domain import Line
from inventory_service.unit_of_work import UnitOfWork


async def on_order_created(event: OrderCreated, uow: UnitOfWork, deps: Dependencies) -> None:
    lines = tuple(Line(item.sku, item.quantity) for item in event.items)
    await service_layer.reserve_stock(uow, event.order_id, lines)


async def on_order_confirmed(event: OrderConfirmed, uow: UnitOfWork, deps: Dependencies) -> None:
    await service_layer.commit_stock(uow, event.order_id)


async def on_order_cancelled(event: OrderCancelled, uow: UnitOfWork, deps: Dependencies) -> None:
    await service_layer.release_stock(uow, event.order_id, reason=event.reason)


HANDLERS: dict[type[Event], EventHandler[UnitOfWork, Dependencies]] = {
    OrderCreated: on_order_created,
    OrderConfirmed: on_order_confirmed,
    OrderCancelled: on_order_cancelled,
}
