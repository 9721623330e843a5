"""Reliable event messaging over RabbitMQ and PostgreSQL.

Describe a system once (``Topology``, your ``Event`` subclasses in an
``EventRegistry``); write in a ``Transaction`` and ``emit`` events (transactional
outbox); run an ``OutboxRelay`` to publish them with confirms; consume with an
``EventConsumer`` whose handlers take ``(event, tx)`` (idempotent inbox, delayed
retries, dead letters). See ``libs/events/README.md``.

The schema side (events, envelope, registry, topology, errors, header names) is
importable without any I/O library; the rest loads aio-pika, SQLAlchemy and
asyncpg on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from events._envelope import Envelope
from events._errors import (
    EventsError,
    ForgedMessage,
    MalformedMessage,
    PermanentError,
    PublishError,
    UnknownEventType,
)
from events._event import Event
from events._registry import EventRegistry
from events._topology import ConsumerQueue, ServiceSpec, Topology
from events._wire import DeadLetterReason, Headers

if TYPE_CHECKING:
    from events._broker import Broker
    from events._consumer import EventConsumer
    from events._declare import declare_exchange, declare_queue
    from events._housekeeping import (
        DEFAULT_INBOX_RETENTION,
        DEFAULT_OUTBOX_RETENTION,
        Housekeeper,
    )
    from events._logs import configure_logging
    from events._message import message_for
    from events._migrations import MIGRATIONS
    from events._outbox import OutboxRelay
    from events._publisher import AmqpPublisher, Publisher
    from events._tables import create_messaging_tables
    from events._tracing import current_trace_headers as trace_headers
    from events._transaction import Transaction, transaction
    from events._unit_of_work import Handler, handle_delivery

# Name → private module, imported when first asked for (PEP 562).
_LAZY = {
    "DEFAULT_INBOX_RETENTION": "_housekeeping",
    "DEFAULT_OUTBOX_RETENTION": "_housekeeping",
    "Housekeeper": "_housekeeping",
    "AmqpPublisher": "_publisher",
    "Broker": "_broker",
    "EventConsumer": "_consumer",
    "Handler": "_unit_of_work",
    "MIGRATIONS": "_migrations",
    "OutboxRelay": "_outbox",
    "Publisher": "_publisher",
    "Transaction": "_transaction",
    "configure_logging": "_logs",
    "create_messaging_tables": "_tables",
    "declare_exchange": "_declare",
    "declare_queue": "_declare",
    "handle_delivery": "_unit_of_work",
    "message_for": "_message",
    "trace_headers": "_tracing",
    "transaction": "_transaction",
}
# Public names spelled otherwise inside their module.
_ALIASES = {"trace_headers": "current_trace_headers"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'events' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"events.{module}"), _ALIASES.get(name, name))
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_INBOX_RETENTION",
    "DEFAULT_OUTBOX_RETENTION",
    "MIGRATIONS",
    "AmqpPublisher",
    "Broker",
    "ConsumerQueue",
    "DeadLetterReason",
    "Envelope",
    "Event",
    "EventConsumer",
    "EventRegistry",
    "EventsError",
    "ForgedMessage",
    "Handler",
    "Headers",
    "Housekeeper",
    "MalformedMessage",
    "OutboxRelay",
    "PermanentError",
    "PublishError",
    "Publisher",
    "ServiceSpec",
    "Topology",
    "Transaction",
    "UnknownEventType",
    "configure_logging",
    "create_messaging_tables",
    "declare_exchange",
    "declare_queue",
    "handle_delivery",
    "message_for",
    "trace_headers",
    "transaction",
]
