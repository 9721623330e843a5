"""Events in: what the inventory does when an order is created, confirmed or cancelled."""

from __future__ import annotations

from collections.abc import Sequence

from events import Event
from service_kit import EventHandler
from shop_contract import OrderCancelled, OrderConfirmed, OrderCreated

from inventory_service import service_layer
from inventory_service.dependencies import Dependencies
from inventory_service.domain import Line
from inventory_service.unit_of_work import UnitOfWork


async def on_order_created(event: OrderCreated, uow: UnitOfWork, deps: Dependencies) -> None:
    await service_layer.reserve_stock(uow, event.order_id, _lines(event))


async def on_order_confirmed(event: OrderConfirmed, uow: UnitOfWork, deps: Dependencies) -> None:
    await service_layer.commit_stock(uow, event.order_id)


async def on_order_cancelled(event: OrderCancelled, uow: UnitOfWork, deps: Dependencies) -> None:
    await service_layer.release_stock(uow, event.order_id, reason=event.reason)


async def lock_batch(uow: UnitOfWork, events: Sequence[Event]) -> None:
    """Before a batch: the rows it will touch, locked in the one global sequence."""
    await service_layer.lock_for_batch(
        uow,
        new_orders=[_lines(e) for e in events if isinstance(e, OrderCreated)],
        settled_orders=[
            e.order_id for e in events if isinstance(e, OrderConfirmed | OrderCancelled)
        ],
    )


def _lines(event: OrderCreated) -> tuple[Line, ...]:
    return tuple(Line(item.sku, item.quantity) for item in event.items)


HANDLERS: dict[type[Event], EventHandler[UnitOfWork, Dependencies]] = {
    OrderCreated: on_order_created,
    OrderConfirmed: on_order_confirmed,
    OrderCancelled: on_order_cancelled,
}
