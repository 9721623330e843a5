"""Reading dead-letter headers, grouping failures, and the headers of a replay."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from shopctl.dlq import letters
from shopctl.dlq.letters import DeadLetter, group, replay_headers
from shopctl.errors import NotADeadLetterQueue

from tests.unit.shopctl.samples import ORDER_ID, broker_dead_letter, consumer_dead_letter


def test_a_consumer_dead_letter_says_why_and_where() -> None:
    letter = consumer_dead_letter(
        reason="retries-exhausted",
        exception="RuntimeError",
        message="gateway down",
        extra={"x-retry-count": 3, "x-last-error": "RuntimeError: gateway down", "x-attempts": 4},
    )
    assert letter.reason == "retries-exhausted"
    assert letter.exception == "RuntimeError"
    assert letter.exception_message == "gateway down"
    assert letter.original_queue == "payment.events"
    assert letter.attempts == 4
    assert letter.retry_count == 3
    assert letter.last_error == "RuntimeError: gateway down"
    assert letter.failed_at == datetime(2025, 1, 2, 10, 0, 5, tzinfo=UTC)
    assert letter.order_id == ORDER_ID


def test_a_broker_dead_letter_is_read_from_x_death() -> None:
    letter = broker_dead_letter()
    assert letter.reason == "delivery_limit"
    assert letter.exception == letters.BROKER_DEAD_LETTER
    assert letter.original_queue == "payment.events"
    assert letter.failed_at == datetime(2025, 1, 2, 10, 0, 9, tzinfo=UTC)


def test_the_order_id_falls_back_to_the_envelope() -> None:
    letter = consumer_dead_letter()
    without = DeadLetter(queue=letter.queue, position=0, body=letter.body)
    assert without.order_id == ORDER_ID
    assert DeadLetter(queue="q", position=0, body=b"\xff garbage").order_id is None


def test_groups_count_by_exception_and_reason_largest_first() -> None:
    found = [
        consumer_dead_letter(exception="MalformedMessage", message="bad body"),
        consumer_dead_letter(exception="RuntimeError", reason="retries-exhausted", message="x"),
        consumer_dead_letter(exception="MalformedMessage", message="other"),
        broker_dead_letter(),
        consumer_dead_letter(exception="MalformedMessage", event_type="order.cancelled"),
    ]
    groups = group(found)
    assert [(g.exception, g.reason, g.count) for g in groups] == [
        ("MalformedMessage", "permanent-error", 3),
        ("(broker)", "delivery_limit", 1),
        ("RuntimeError", "retries-exhausted", 1),
    ]
    assert groups[0].event_types == ("order.created", "order.cancelled")
    assert groups[0].example == "bad body"


def test_a_replay_resets_the_retry_budget_and_counts_replays() -> None:
    now = datetime(2025, 1, 3, 12, 0, tzinfo=UTC)
    headers = {
        "x-retry-count": 3,
        "x-delivery-count": 7,
        "x-exception": "RuntimeError",
        "x-schema-version": 1,
    }
    letter = DeadLetter(
        queue="payment.events.dlq",
        position=0,
        body=b"{}",
        headers=headers,
        event_type="order.cancelled",
        user_id="shop_order",
    )
    first = replay_headers(letter, replayed_at=now)
    assert "x-retry-count" not in first
    assert "x-delivery-count" not in first
    assert first["x-replay-count"] == 1
    assert first["x-replayed-at"] == "2025-01-03T12:00:00+00:00"
    assert first["x-exception"] == "RuntimeError"  # kept as history
    assert first["x-schema-version"] == 1
    # The consumer checks a replay's original key and publisher again.
    assert first["x-original-routing-key"] == "order.cancelled"
    assert first["x-original-user-id"] == "shop_order"
    again = replay_headers(replace(letter, headers=first), replayed_at=now)
    assert again["x-replay-count"] == 2
    assert headers["x-retry-count"] == 3  # the input is not changed


def test_queue_names() -> None:
    assert letters.source_queue("payment.events.dlq") == "payment.events"
    assert letters.dead_letter_exchange("payment.events") == "payment.events.dlx"
    assert letters.resolve_queue("payment") == "payment.events.dlq"
    assert letters.resolve_queue("x.dlq") == "x.dlq"
    assert letters.shop_dead_letter_queues() == [
        "order.events.dlq",
        "inventory.events.dlq",
        "payment.events.dlq",
        "email.events.dlq",
    ]
    with pytest.raises(NotADeadLetterQueue):
        letters.source_queue("payment.events")
    with pytest.raises(NotADeadLetterQueue):
        letters.source_queue(".dlq")


def test_header_values_become_plain_json() -> None:
    when = datetime(2025, 1, 1, tzinfo=UTC)
    assert letters.plain({"a": b"bytes", "b": [when, {"c": b"\xff"}]}) == {
        "a": "bytes",
        "b": ["2025-01-01T00:00:00+00:00", {"c": "\ufffd"}],
    }
    assert letters.parse_time("2025-01-01T00:00:00Z") == when
    assert letters.parse_time("2025-01-01T00:00:00") == when  # naive means UTC
    assert letters.parse_time("yesterday") is None
