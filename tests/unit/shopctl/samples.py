"""Sample dead letters and envelopes shaped like the real ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from shopctl.dlq.letters import DeadLetter

ORDER_ID = "6f1c2e0a-3b7d-4c1e-9a55-0d2f8e7b9c11"


def envelope_body(event_type: str = "order.created", order_id: str = ORDER_ID) -> bytes:
    return json.dumps(
        {
            "id": str(uuid4()),
            "type": event_type,
            "version": 1,
            "occurred_at": "2025-01-02T10:00:00+00:00",
            "correlation_id": order_id,
            "causation_id": None,
            "data": {"order_id": order_id},
        }
    ).encode()


def consumer_dead_letter(
    *,
    position: int = 0,
    exception: str = "MalformedMessage",
    message: str = "not an event envelope",
    reason: str = "permanent-error",
    event_type: str = "order.created",
    order_id: str = ORDER_ID,
    failed_at: str = "2025-01-02T10:00:05+00:00",
    extra: dict[str, Any] | None = None,
) -> DeadLetter:
    return DeadLetter(
        queue="payment.events.dlq",
        position=position,
        body=envelope_body(event_type, order_id),
        headers={
            "x-dead-letter-reason": reason,
            "x-exception": exception,
            "x-exception-message": message,
            "x-original-queue": "payment.events",
            "x-original-routing-key": event_type,
            "x-attempts": 1,
            "x-failed-at": failed_at,
            **(extra or {}),
        },
        message_id=str(uuid4()),
        correlation_id=order_id,
        event_type=event_type,
        routing_key="payment.events.dlq",
        content_type="application/json",
    )


def broker_dead_letter(position: int = 0) -> DeadLetter:
    return DeadLetter(
        queue="payment.events.dlq",
        position=position,
        body=envelope_body(),
        headers={
            "x-death": [
                {
                    "count": 1,
                    "reason": "delivery_limit",
                    "queue": "payment.events",
                    "time": datetime(2025, 1, 2, 10, 0, 9, tzinfo=UTC).isoformat(),
                    "exchange": "events",
                    "routing-keys": ["order.created"],
                }
            ]
        },
        message_id=str(uuid4()),
        correlation_id=ORDER_ID,
        event_type="order.created",
    )
