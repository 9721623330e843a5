"""Reliable event messaging for the shop: outbox, relay, inbox consumer, topology.

A service publishes with ``outbox.add(session, SomethingHappened(...))`` inside its
own transaction, runs an ``OutboxRelay``, and consumes with an ``EventConsumer``
whose handlers take ``(event, context)`` and emit follow-up events via
``context.emit``. See ``libs/events/README.md``.
"""

from events.broker import Broker
from events.catalogue import (
    ALL_EVENTS,
    EmailSent,
    Event,
    InventoryRejected,
    InventoryReleased,
    InventoryReserved,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderLine,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentVoided,
    StockLine,
)
from events.consumer import EventConsumer, Handler, MessageContext, handle_delivery
from events.envelope import Envelope, OutboundMessage
from events.errors import (
    EventsError,
    MalformedMessage,
    PermanentError,
    PublishError,
    UnknownEventType,
)
from events.outbox import OutboxRelay, add
from events.publisher import AmqpPublisher, Publisher, to_amqp
from events.registry import DEFAULT_REGISTRY, EventRegistry
from events.tables import create_messaging_tables, drop_messaging_tables
from events.topology import SHOP_SERVICES, ConsumerQueue, ServiceSpec, declare_queue

__all__ = [
    "ALL_EVENTS",
    "DEFAULT_REGISTRY",
    "SHOP_SERVICES",
    "AmqpPublisher",
    "Broker",
    "ConsumerQueue",
    "EmailSent",
    "Envelope",
    "Event",
    "EventConsumer",
    "EventRegistry",
    "EventsError",
    "Handler",
    "InventoryRejected",
    "InventoryReleased",
    "InventoryReserved",
    "MalformedMessage",
    "MessageContext",
    "OrderCancelled",
    "OrderConfirmed",
    "OrderCreated",
    "OrderLine",
    "OutboundMessage",
    "OutboxRelay",
    "PaymentAuthorized",
    "PaymentDeclined",
    "PaymentVoided",
    "PermanentError",
    "PublishError",
    "Publisher",
    "ServiceSpec",
    "StockLine",
    "UnknownEventType",
    "add",
    "create_messaging_tables",
    "declare_queue",
    "drop_messaging_tables",
    "handle_delivery",
    "to_amqp",
]
