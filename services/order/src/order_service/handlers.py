"""Events in: the saga's join of inventory's and payment's answers.

Each handler turns its event into one side's outcome; the service layer locks
the order, lets the domain decide, and stages ``order.confirmed`` or
``order.cancelled`` in the same transaction as the inbox claim.
"""

from __future__ import annotations

from events import Event
from service_kit import EventHandler
from shop_contract import InventoryRejected, InventoryReserved, PaymentAuthorized, PaymentDeclined

from order_service import service_layer
from order_service.dependencies import Dependencies
from order_service.domain import outcomes
from order_service.unit_of_work import UnitOfWork


async def on_inventory_reserved(
    event: InventoryReserved, uow: UnitOfWork, deps: Dependencies
) -> None:
    await service_layer.record_outcome(uow, event.order_id, outcomes.stock_reserved())


async def on_inventory_rejected(
    event: InventoryRejected, uow: UnitOfWork, deps: Dependencies
) -> None:
    outcome = outcomes.stock_rejected(event.missing_skus, event.reason)
    await service_layer.record_outcome(uow, event.order_id, outcome)


async def on_payment_authorized(
    event: PaymentAuthorized, uow: UnitOfWork, deps: Dependencies
) -> None:
    await service_layer.record_outcome(uow, event.order_id, outcomes.payment_authorized())


async def on_payment_declined(event: PaymentDeclined, uow: UnitOfWork, deps: Dependencies) -> None:
    outcome = outcomes.payment_declined(event.reason)
    await service_layer.record_outcome(uow, event.order_id, outcome)


HANDLERS: dict[type[Event], EventHandler[UnitOfWork, Dependencies]] = {
    InventoryReserved: on_inventory_reserved,
    InventoryRejected: on_inventory_rejected,
    PaymentAuthorized: on_payment_authorized,
    PaymentDeclined: on_payment_declined,
}
