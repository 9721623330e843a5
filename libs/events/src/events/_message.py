"""An event as an AMQP message: one function builds it, for the relay and for tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aio_pika

from events._envelope import Envelope
from events._wire import CONTENT_TYPE, Headers


def envelope_headers(envelope: Envelope, trace: dict[str, str] | None = None) -> dict[str, Any]:
    """The headers an event travels with: schema version, causation id, trace context."""
    headers: dict[str, Any] = {Headers.SCHEMA_VERSION: envelope.version, **(trace or {})}
    if envelope.causation_id is not None:
        headers[Headers.CAUSATION_ID] = str(envelope.causation_id)
    return headers


def amqp_message(
    *,
    event_id: str,
    routing_key: str,
    correlation_id: str,
    body: bytes,
    headers: dict[str, Any],
    timestamp: datetime,
    user_id: str | None,
) -> aio_pika.Message:
    """Persistent JSON; ``type`` is the routing key; ``user_id`` the publisher's broker user."""
    return aio_pika.Message(
        body=body,
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event_id,
        correlation_id=correlation_id,
        type=routing_key,
        timestamp=timestamp,
        headers=headers,
        user_id=user_id,
    )


def message_for(envelope: Envelope, *, user_id: str | None = None) -> aio_pika.Message:
    """The message a relay would publish for ``envelope`` (for tools and tests)."""
    return amqp_message(
        event_id=str(envelope.id),
        routing_key=envelope.type,
        correlation_id=envelope.correlation_id,
        body=envelope.model_dump_json().encode(),
        headers=envelope_headers(envelope),
        timestamp=envelope.occurred_at,
        user_id=user_id,
    )
