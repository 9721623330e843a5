"""The shop's public contract, as code: event schemas, topology, ports.

Pure data: importing it loads no I/O library, so domains, tools and documents
(AsyncAPI) can all derive from it.
"""

from events import EventRegistry

from shop_contract.catalogue import (
    ALL_EVENTS,
    EmailKind,
    EmailSent,
    InventoryRejected,
    InventoryReleased,
    InventoryReserved,
    Money,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderEvent,
    OrderLine,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentVoided,
    StockLine,
)
from shop_contract.topology import PORTS, SERVICE_NAMES, SHOP, account_name

REGISTRY = EventRegistry(ALL_EVENTS)
"""Every event model of the shop, by routing key and schema version."""

__all__ = [
    "ALL_EVENTS",
    "PORTS",
    "REGISTRY",
    "SERVICE_NAMES",
    "SHOP",
    "EmailKind",
    "EmailSent",
    "InventoryRejected",
    "InventoryReleased",
    "InventoryReserved",
    "Money",
    "OrderCancelled",
    "OrderConfirmed",
    "OrderCreated",
    "OrderEvent",
    "OrderLine",
    "PaymentAuthorized",
    "PaymentDeclined",
    "PaymentVoided",
    "StockLine",
    "account_name",
]
