import json
import uuid
from decimal import Decimal

import pytest
from events import (
    ALL_EVENTS,
    DEFAULT_REGISTRY,
    Envelope,
    EventRegistry,
    MalformedMessage,
    OrderCreated,
    OrderLine,
    OutboundMessage,
    PaymentDeclined,
    UnknownEventType,
)


def an_order() -> OrderCreated:
    return OrderCreated(
        order_id=uuid.uuid4(),
        customer_id="c-1",
        email="a@example.com",
        items=(OrderLine(sku="MOUSE-01", quantity=2, unit_price=Decimal("29.50")),),
        total=Decimal("59.00"),
        currency="EUR",
        payment_token="tok_visa",
    )


def test_every_contract_event_is_registered_once_under_its_routing_key() -> None:
    assert DEFAULT_REGISTRY.routing_keys == {
        "order.created",
        "order.confirmed",
        "order.cancelled",
        "inventory.reserved",
        "inventory.rejected",
        "inventory.released",
        "payment.authorized",
        "payment.declined",
        "payment.voided",
        "email.sent",
    }
    with pytest.raises(ValueError, match="two models"):
        EventRegistry([*ALL_EVENTS, OrderCreated])


def test_envelope_round_trips_through_the_wire_format() -> None:
    event = an_order()
    envelope = Envelope.wrap(event, causation_id=uuid.uuid4())
    message = OutboundMessage.from_envelope(envelope, {"traceparent": "00-abc-def-01"})

    assert message.routing_key == "order.created"
    assert message.message_id == str(envelope.id)
    assert message.correlation_id == str(event.order_id)
    assert message.headers["x-schema-version"] == 1
    assert message.headers["x-causation-id"] == str(envelope.causation_id)
    assert message.headers["traceparent"] == "00-abc-def-01"
    body = json.loads(message.body)
    assert body["data"]["total"] == "59.00", "money travels as a decimal string"
    assert body["data"]["items"][0]["unit_price"] == "29.50"

    decoded = DEFAULT_REGISTRY.decode(Envelope.from_body(message.body))
    assert decoded == event


def test_unknown_type_or_version_is_permanent() -> None:
    envelope = Envelope.wrap(an_order())
    with pytest.raises(UnknownEventType):
        DEFAULT_REGISTRY.decode(envelope.model_copy(update={"type": "order.exploded"}))
    with pytest.raises(UnknownEventType):
        DEFAULT_REGISTRY.decode(envelope.model_copy(update={"version": 2}))


@pytest.mark.parametrize("body", [b"", b"[]", b"{oops", b'{"id": 1}'])
def test_a_body_that_is_not_an_envelope_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        Envelope.from_body(body)


def test_schema_violation_names_the_field() -> None:
    envelope = Envelope.wrap(an_order())
    data = {**envelope.data, "items": [{"sku": "X", "quantity": 0, "unit_price": "1"}]}
    with pytest.raises(MalformedMessage, match=r"items\.0\.quantity"):
        DEFAULT_REGISTRY.decode(envelope.model_copy(update={"data": data}))


def test_unknown_fields_are_tolerated_within_a_version() -> None:
    envelope = Envelope.wrap(PaymentDeclined(order_id=uuid.uuid4(), amount=Decimal(1), reason="x"))
    data = {**envelope.data, "added_later": True}
    assert DEFAULT_REGISTRY.decode(envelope.model_copy(update={"data": data}))
