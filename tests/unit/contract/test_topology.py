"""The shop's topology: the contract's names, and every service true to it."""

from typing import Any

import pytest
from email_service.service import SERVICE as EMAIL
from events import Event
from inventory_service.service import SERVICE as INVENTORY
from order_service.service import SERVICE as ORDER
from payment_service.service import SERVICE as PAYMENT
from service_kit import ServiceDefinition
from shop_contract import REGISTRY, SHOP

SERVICES = (ORDER, INVENTORY, PAYMENT, EMAIL)


def test_contract_queue_names_and_bindings() -> None:
    assert {SHOP.queue(spec.name).name for spec in SHOP.consumers} == {
        "order.events",
        "inventory.events",
        "payment.events",
        "email.events",
    }
    inventory = SHOP.queue("inventory")
    assert inventory.dead_letter_queue == "inventory.events.dlq"
    assert inventory.bindings == {"order.created", "order.confirmed", "order.cancelled"}
    assert SHOP.exchange == "events"


def test_every_published_and_consumed_key_is_a_known_event() -> None:
    for spec in SHOP.services:
        assert spec.consumes <= REGISTRY.routing_keys
        assert spec.publishes <= REGISTRY.routing_keys
        assert all(key.startswith(f"{spec.name}.") for key in spec.publishes)
    published = {key for spec in SHOP.services for key in spec.publishes}
    assert SHOP.consumed_keys <= published, "nobody consumes an event that nobody publishes"
    assert published == REGISTRY.routing_keys


def test_events_nobody_consumes_are_the_notifications() -> None:
    """These are published without ``mandatory``; every other key must reach a queue."""
    published = {key for spec in SHOP.services for key in spec.publishes}
    assert published - SHOP.consumed_keys == {"email.sent", "inventory.released", "payment.voided"}


def test_each_event_type_has_one_owner_and_its_broker_user() -> None:
    assert SHOP.publishers()["payment.authorized"] == "shop_payment"
    assert SHOP.publishers(prefix="t1_")["order.created"] == "t1_shop_order"
    owner = SHOP.owner_of("inventory.reserved")
    assert owner is not None
    assert owner.name == "inventory"
    assert SHOP.owner_of("nobody.publishes") is None


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_each_service_handles_exactly_what_the_topology_says_it_consumes(
    service: ServiceDefinition[Any, Any, Any],
) -> None:
    """Declared once in the service (its handler map), checked against the contract here."""
    assert service.consumes == SHOP.service(service.name).consumes
    assert all(issubclass(event, Event) for event in service.handlers)
