"""Tail lines: decoded events, time into the order's story, the printed line."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from events import Envelope
from shop_contract import OrderCreated, PaymentAuthorized
from shop_contract.testing import line, order_created
from shopctl.tail.lines import OrderClock, TailEvent, format_line

ORDER = uuid4()
T0 = datetime(2025, 1, 2, 10, 0, tzinfo=UTC)


def created() -> OrderCreated:
    return order_created(ORDER, items=[line("SKU-1", 1, "9.99")])


def event_at(event_type: str, seconds: float, order: str = str(ORDER)) -> TailEvent:
    return TailEvent(
        received_at=T0 + timedelta(seconds=seconds + 0.5),
        routing_key=event_type,
        event_type=event_type,
        order_id=order,
        event_id=str(uuid4()),
        occurred_at=T0 + timedelta(seconds=seconds),
    )


def test_an_envelope_decodes_to_its_type_order_and_id() -> None:
    envelope = Envelope.wrap(created())
    event = TailEvent.decode(
        envelope.model_dump_json().encode(), routing_key="order.created", received_at=T0
    )
    assert event.event_type == "order.created"
    assert event.order_id == str(ORDER)
    assert event.event_id == str(envelope.id)
    assert event.occurred_at == envelope.occurred_at
    assert event.service == "order"
    assert event.problem is None


def test_a_foreign_body_still_makes_a_line_from_the_properties() -> None:
    event = TailEvent.decode(
        b"not json",
        routing_key="payment.authorized",
        received_at=T0,
        message_id="m-1",
        correlation_id="o-1",
        message_type="payment.authorized",
    )
    assert (event.event_type, event.order_id, event.event_id) == (
        "payment.authorized",
        "o-1",
        "m-1",
    )
    assert event.service == "payment"
    assert event.problem is not None


def test_elapsed_time_counts_from_order_created() -> None:
    clock = OrderClock()
    assert clock.elapsed(event_at("order.created", 0)) == timedelta(0)
    assert clock.elapsed(event_at("payment.authorized", 1.25)) == timedelta(seconds=1.25)


def test_without_order_created_the_first_event_starts_the_clock_until_created_shows_up() -> None:
    clock = OrderClock()
    assert clock.elapsed(event_at("inventory.reserved", 2)) == timedelta(0)
    assert clock.elapsed(event_at("payment.authorized", 3)) == timedelta(seconds=1)
    assert clock.elapsed(event_at("order.created", 0)) == timedelta(0)
    assert clock.elapsed(event_at("order.confirmed", 4)) == timedelta(seconds=4)


def test_the_clock_forgets_the_oldest_orders() -> None:
    clock = OrderClock(capacity=2)
    for order in ("a", "b", "c"):
        clock.elapsed(event_at("order.created", 0, order))
    assert clock.elapsed(event_at("payment.authorized", 5, "a")) == timedelta(0)  # forgotten
    assert clock.elapsed(event_at("payment.authorized", 5, "c")) == timedelta(seconds=5)


def test_the_line_names_service_type_order_short_id_and_elapsed() -> None:
    envelope = Envelope.wrap(
        PaymentAuthorized(order_id=ORDER, amount="9.99", currency="EUR", authorization_id="a1")
    )
    event = TailEvent.decode(
        envelope.model_dump_json().encode(), routing_key="payment.authorized", received_at=T0
    )
    line = format_line(event, timedelta(seconds=1.5))
    text = line.plain
    assert "payment" in text
    assert "payment.authorized" in text
    assert str(ORDER) in text
    assert str(envelope.id)[:8] in text
    assert str(envelope.id) not in text
    assert "+1.500s" in text
    assert any(span.style == "green" for span in line.spans)  # payment's colour
