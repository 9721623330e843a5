"""Each order's timeline as the web view builds it, and how times read on the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from shopctl.web import labels
from shopctl.web.observe import Kind, Observation
from shopctl.web.timeline import NO_ORDER, Timelines

pytestmark = pytest.mark.timeout(10)

T0 = datetime(2025, 1, 2, 10, 0, tzinfo=UTC)
OWNERS = {"order": "shop_order", "inventory": "shop_inventory", "payment": "shop_payment"}


def seen(
    event_type: str,
    ms: int,
    *,
    order: str | None = "o-1",
    kind: Kind = Kind.EVENT,
    service: str | None = None,
    publisher: str | None = None,
) -> Observation:
    owner = service or event_type.split(".")[0]
    return Observation(
        kind=kind,
        received_at=T0 + timedelta(milliseconds=ms),
        event_type=event_type,
        order_id=order,
        event_id=f"{event_type}-{ms}",
        service=owner,
        publisher=publisher or OWNERS.get(owner),
        expected_publisher=OWNERS.get(owner),
        queue=f"{owner}.events.dlq" if kind is Kind.DEAD_LETTER else None,
    )


def test_steps_measure_from_the_orders_first_message_and_from_the_step_before() -> None:
    timelines = Timelines()
    timelines.add(seen("order.created", 0))
    timelines.add(seen("inventory.reserved", 40))
    step, order = timelines.add(seen("payment.authorized", 1290))
    assert step.since_start == timedelta(milliseconds=1290)
    assert step.since_previous == timedelta(milliseconds=1250)
    shown = step.as_json()
    assert shown["since_start_label"] == "+1.290s"
    assert shown["since_previous_label"] == "+1.250s"
    assert shown["since_start_ms"] == 1290
    assert shown["service"] == "payment"
    assert shown["trusted"] is True
    assert order.summary()["duration_label"] == "1.290s"
    first = order.as_json()["timeline"][0]
    assert first["since_previous_label"] == "-"
    assert first["since_start_label"] == "+0ms"


def test_the_status_follows_the_order_events_and_a_final_one_stays() -> None:
    timelines = Timelines()
    _, order = timelines.add(seen("order.created", 0))
    assert order.status == "PENDING"
    timelines.add(seen("order.cancelled", 10))
    timelines.add(seen("order.created", 20))  # a redelivery does not reopen it
    assert order.status == "CANCELLED"


def test_retries_and_dead_letters_are_counted_and_a_dead_letter_can_be_replayed() -> None:
    timelines = Timelines()
    timelines.add(seen("order.created", 0))
    timelines.add(seen("order.created", 5, kind=Kind.RETRY, service="payment"))
    step, order = timelines.add(seen("order.created", 9, kind=Kind.DEAD_LETTER, service="payment"))
    summary = order.summary()
    assert (summary["retries"], summary["dead_letters"]) == (1, 1)
    assert summary["services"] == ["order", "payment"]
    assert step.as_json()["replayable"] is True
    assert step.as_json()["queue"] == "payment.events.dlq"


def test_an_untrusted_publisher_is_marked() -> None:
    step, _ = Timelines().add(seen("payment.authorized", 0, publisher="shop_order"))
    assert step.as_json()["trusted"] is False
    assert step.as_json()["expected_publisher"] == "shop_payment"


def test_messages_without_an_order_are_kept_together() -> None:
    timelines = Timelines()
    timelines.add(seen("order.created", 0, order=None))
    _, order = timelines.add(seen("email.sent", 1, order=None, service="email"))
    assert order.order_id == NO_ORDER
    assert len(order.steps) == 2


def test_only_the_most_recently_active_orders_are_kept() -> None:
    timelines = Timelines(max_orders=2)
    timelines.add(seen("order.created", 0, order="a"))
    timelines.add(seen("order.created", 1, order="b"))
    timelines.add(seen("order.confirmed", 2, order="a"))  # a is active again
    timelines.add(seen("order.created", 3, order="c"))
    assert timelines.get("b") is None
    assert [o["order_id"] for o in timelines.as_json()] == ["c", "a"]  # newest first


def test_an_order_keeps_its_latest_steps_and_says_how_many_went() -> None:
    timelines = Timelines(max_steps=3)
    for ms in range(5):
        _, order = timelines.add(seen("order.created", ms))
    assert [s.observation.received_at for s in order.steps] == [
        T0 + timedelta(milliseconds=ms) for ms in (2, 3, 4)
    ]
    assert order.summary()["dropped"] == 2
    assert order.summary()["steps"] == 5


@pytest.mark.parametrize(
    ("elapsed", "label"),
    [
        (None, "-"),
        (timedelta(0), "+0ms"),
        (timedelta(milliseconds=42), "+42ms"),
        (timedelta(seconds=1.25), "+1.250s"),
        (timedelta(seconds=-0.5), "-500ms"),
        (timedelta(minutes=2, seconds=5.4), "+2m05s"),
    ],
)
def test_durations_read_in_the_unit_that_suits_them(elapsed: timedelta | None, label: str) -> None:
    assert labels.duration(elapsed) == label


def test_an_unsigned_duration_has_no_plus() -> None:
    assert labels.duration(timedelta(seconds=3), signed=False) == "3.000s"


def test_clock_times_have_milliseconds_in_the_given_zone() -> None:
    moment = datetime(2025, 1, 2, 10, 0, 7, 42_000, tzinfo=UTC)
    assert labels.clock(moment, UTC) == "10:00:07.042"
    assert labels.clock(moment, timezone(timedelta(hours=2))) == "12:00:07.042"


def test_short_ids_are_eight_characters() -> None:
    assert labels.short_id("6f1c2e0a-3b7d-4c1e") == "6f1c2e0a"
    assert labels.short_id(None) == "-"
