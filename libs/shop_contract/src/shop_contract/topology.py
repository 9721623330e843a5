"""Who publishes and who consumes what in the shop, and where each service listens.

The one description of the system's event flow: queues, bindings, broker
permissions, the trust check on every delivery and the AsyncAPI document are
derived from it.
"""

from __future__ import annotations

from events import ServiceSpec, Topology

from shop_contract.catalogue import (
    EmailSent,
    InventoryRejected,
    InventoryReleased,
    InventoryReserved,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderEvent,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentVoided,
)


def _keys(*events: type[OrderEvent]) -> frozenset[str]:
    return frozenset(event.TYPE for event in events)


SHOP = Topology(
    services=(
        ServiceSpec(
            "order",
            publishes=_keys(OrderCreated, OrderConfirmed, OrderCancelled),
            consumes=_keys(
                InventoryReserved, InventoryRejected, PaymentAuthorized, PaymentDeclined
            ),
        ),
        ServiceSpec(
            "inventory",
            publishes=_keys(InventoryReserved, InventoryRejected, InventoryReleased),
            consumes=_keys(OrderCreated, OrderConfirmed, OrderCancelled),
        ),
        ServiceSpec(
            "payment",
            publishes=_keys(PaymentAuthorized, PaymentDeclined, PaymentVoided),
            consumes=_keys(OrderCreated, OrderCancelled),
        ),
        ServiceSpec(
            "email",
            publishes=_keys(EmailSent),
            consumes=_keys(OrderCreated, OrderConfirmed, OrderCancelled),
        ),
    ),
    exchange="events",
    # Each service's broker user, database role and database are shop_<service>.
    broker_user="shop_{service}",
)

SERVICE_NAMES: tuple[str, ...] = tuple(spec.name for spec in SHOP.services)

# The contract's default HTTP ports.
PORTS: dict[str, int] = {"order": 8000, "inventory": 8001, "payment": 8002, "email": 8003}


def account_name(service: str, *, prefix: str = "") -> str:
    """``shop_<svc>``: the broker user, database role and database of a service."""
    return SHOP.user_of(service, prefix=prefix)
