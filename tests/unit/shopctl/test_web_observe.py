"""What the web tap makes of each message: an event and who published it, a retry, a dead
letter, a replay; and what it leaves out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from shopctl.web.depths import QueueCount, depths_json, watched_queues
from shopctl.web.observe import Kind, observe

from tests.unit.shopctl.samples import ORDER_ID, envelope_body

pytestmark = pytest.mark.timeout(10)

AT = datetime(2025, 1, 2, 10, 0, 1, tzinfo=UTC)


@dataclass
class Message:
    """The parts of an AMQP delivery the tap reads (aio-pika's shape)."""

    routing_key: str
    body: bytes = b""
    headers: Mapping[str, Any] = field(default_factory=dict)
    message_id: str | None = "m-1"
    correlation_id: str | None = ORDER_ID
    type: str | None = None
    content_type: str | None = "application/json"
    timestamp: datetime | None = None
    user_id: str | None = None


def event(event_type: str, user_id: str | None) -> Message:
    return Message(
        routing_key=event_type,
        body=envelope_body(event_type),
        type=event_type,
        user_id=user_id,
    )


def test_an_event_names_its_owner_and_the_publisher_the_broker_vouched_for() -> None:
    seen = observe(event("payment.authorized", "shop_payment"), received_at=AT)
    assert seen is not None
    assert (seen.kind, seen.event_type, seen.service, seen.order_id) == (
        Kind.EVENT,
        "payment.authorized",
        "payment",
        ORDER_ID,
    )
    assert (seen.publisher, seen.expected_publisher, seen.trusted) == (
        "shop_payment",
        "shop_payment",
        True,
    )
    assert seen.occurred_at == datetime(2025, 1, 2, 10, 0, tzinfo=UTC)


def test_an_event_from_anyone_but_its_owner_is_not_trusted() -> None:
    seen = observe(event("payment.authorized", "shop_order"), received_at=AT)
    assert seen is not None
    assert not seen.trusted
    assert seen.expected_publisher == "shop_payment"
    assert observe(event("order.created", None), received_at=AT).trusted is False  # type: ignore[union-attr]


def test_the_broker_user_prefix_is_part_of_the_expected_publisher() -> None:
    seen = observe(event("order.created", "t1_shop_order"), received_at=AT, prefix="t1_")
    assert seen is not None
    assert seen.trusted


def test_a_body_that_is_no_envelope_is_shown_with_its_problem() -> None:
    message = Message(routing_key="order.created", body=b"not json", type="order.created")
    seen = observe(message, received_at=AT)
    assert seen is not None
    assert seen.kind is Kind.EVENT
    assert seen.event_type == "order.created"
    assert seen.order_id == ORDER_ID  # from the AMQP correlation id
    assert seen.problem


def test_a_copy_to_a_retry_queue_is_a_retry_of_the_consumer_that_failed() -> None:
    message = Message(
        routing_key="payment.events.retry.5000ms",
        body=envelope_body("order.created"),
        type="order.created",
        user_id="shop_payment",
        headers={"x-retry-count": 2, "x-last-error": "GatewayTimeout: no answer"},
    )
    seen = observe(message, received_at=AT)
    assert seen is not None
    assert (seen.kind, seen.service, seen.event_type, seen.queue) == (
        Kind.RETRY,
        "payment",
        "order.created",
        "payment.events",
    )
    assert seen.detail == "retry 2 in 5s: GatewayTimeout: no answer"
    assert seen.trusted


def test_a_copy_to_a_dead_letter_queue_says_why() -> None:
    message = Message(
        routing_key="inventory.events.dlq",
        body=envelope_body("order.confirmed"),
        type="order.confirmed",
        user_id="shop_inventory",
        headers={
            "x-dead-letter-reason": "retries-exhausted",
            "x-exception": "RuntimeError",
            "x-exception-message": "database on fire",
        },
    )
    seen = observe(message, received_at=AT)
    assert seen is not None
    assert (seen.kind, seen.service, seen.queue) == (
        Kind.DEAD_LETTER,
        "inventory",
        "inventory.events.dlq",
    )
    assert seen.detail == "retries-exhausted: RuntimeError: database on fire"
    assert seen.event_id == "m-1"


def test_a_replay_is_shown_and_a_retry_coming_back_is_not() -> None:
    replayed = Message(
        routing_key="email.events",
        type="order.created",
        user_id="shop_email",
        headers={
            "x-replayed-at": "2025-01-02T10:00:00+00:00",
            "x-replay-count": 2,
            "x-death": [{"reason": "delivery_limit", "queue": "email.events"}],  # kept history
        },
    )
    seen = observe(replayed, received_at=AT)
    assert seen is not None
    assert seen.kind is Kind.REPLAY
    assert seen.detail == "replayed from email.events.dlq (replay 2)"

    back_from_waiting = Message(
        routing_key="email.events",
        type="order.created",
        headers={
            "x-death": [{"reason": "expired", "queue": "email.events.retry.1000ms"}],
            "x-retry-count": 1,
            "x-replayed-at": "2025-01-02T10:00:00+00:00",  # it was replayed once, earlier
        },
    )
    assert observe(back_from_waiting, received_at=AT) is None


def test_queue_counts_read_per_service_and_missing_queues_say_so() -> None:
    watched = watched_queues()
    payment = next(q for q in watched if q.service == "payment")
    assert payment.names == (
        "payment.events",
        "payment.events.retry.1000ms",
        "payment.events.retry.5000ms",
        "payment.events.retry.30000ms",
        "payment.events.dlq",
    )
    counts = {
        "payment.events": QueueCount(messages=3, consumers=8),
        "payment.events.retry.1000ms": QueueCount(1, 0),
        "payment.events.retry.5000ms": QueueCount(2, 0),
        "payment.events.retry.30000ms": None,
        "payment.events.dlq": QueueCount(4, 0),
    }
    rows = {row["service"]: row for row in depths_json(watched, counts)}
    assert rows["payment"] == {
        "service": "payment",
        "queue": "payment.events",
        "missing": False,
        "ready": 3,
        "consumers": 8,
        "retrying": 3,
        "dead_letter_queue": "payment.events.dlq",
        "dead_letters": 4,
    }
    assert rows["order"] == {"service": "order", "queue": "order.events", "missing": True}
