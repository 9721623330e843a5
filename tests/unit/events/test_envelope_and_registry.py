"""Envelope, wire format and registry, on events of the tests' own (no shop here)."""

import json
import uuid
from decimal import Decimal
from typing import Annotated, ClassVar

import pytest
from events import (
    Envelope,
    Event,
    EventRegistry,
    Headers,
    MalformedMessage,
    UnknownEventType,
    message_for,
)
from pydantic import Field, PlainSerializer

Amount = Annotated[Decimal, Field(ge=0), PlainSerializer(str)]


class ParcelShipped(Event):
    TYPE = "parcel.shipped"
    CORRELATED_BY: ClassVar[str | None] = "parcel_id"
    parcel_id: uuid.UUID
    weight: Amount
    pieces: int = Field(ge=1)


class ParcelLost(Event):
    TYPE = "parcel.lost"
    CORRELATED_BY: ClassVar[str | None] = "parcel_id"
    parcel_id: uuid.UUID
    where: str


class Heartbeat(Event):
    TYPE = "clock.ticked"


REGISTRY = EventRegistry([ParcelShipped, ParcelLost, Heartbeat])


def shipped() -> ParcelShipped:
    return ParcelShipped(parcel_id=uuid.uuid4(), weight=Decimal("2.50"), pieces=2)


def test_registry_knows_each_type_once_under_its_routing_key() -> None:
    assert REGISTRY.routing_keys == {"parcel.shipped", "parcel.lost", "clock.ticked"}
    with pytest.raises(ValueError, match="two models"):
        EventRegistry([ParcelShipped, ParcelShipped])


def test_an_event_names_its_correlation_id_or_inherits_its_causes() -> None:
    event = shipped()
    cause = Envelope.wrap(event)
    assert cause.correlation_id == str(event.parcel_id)

    tick = Envelope.wrap(Heartbeat(), caused_by=cause)
    assert tick.correlation_id == cause.correlation_id, "no key of its own: its cause's"
    assert tick.causation_id == cause.id
    alone = Envelope.wrap(Heartbeat())
    assert alone.correlation_id == str(alone.id), "no key and no cause: its own id"


def test_envelope_round_trips_through_the_wire_format() -> None:
    event = shipped()
    envelope = Envelope.wrap(event, caused_by=Envelope.wrap(Heartbeat()))
    message = message_for(envelope, user_id="shipping")

    assert message.type == "parcel.shipped"
    assert message.message_id == str(envelope.id)
    assert message.correlation_id == str(event.parcel_id)
    assert message.user_id == "shipping"
    assert message.content_type == "application/json"
    assert message.headers[Headers.SCHEMA_VERSION] == 1
    assert message.headers[Headers.CAUSATION_ID] == str(envelope.causation_id)
    body = json.loads(message.body)
    assert body["data"]["weight"] == "2.50", "decimals travel as strings"
    assert REGISTRY.decode(Envelope.from_body(message.body)) == event


def test_unknown_type_or_version_is_permanent() -> None:
    envelope = Envelope.wrap(shipped())
    with pytest.raises(UnknownEventType):
        REGISTRY.decode(envelope.model_copy(update={"type": "parcel.exploded"}))
    with pytest.raises(UnknownEventType):
        REGISTRY.decode(envelope.model_copy(update={"version": 2}))


@pytest.mark.parametrize("body", [b"", b"[]", b"{oops", b'{"id": 1}'])
def test_a_body_that_is_not_an_envelope_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        Envelope.from_body(body)


def test_schema_violation_names_the_field() -> None:
    envelope = Envelope.wrap(shipped())
    with pytest.raises(MalformedMessage, match=r"pieces"):
        REGISTRY.decode(envelope.model_copy(update={"data": {**envelope.data, "pieces": 0}}))


def test_unknown_fields_are_tolerated_within_a_version() -> None:
    envelope = Envelope.wrap(ParcelLost(parcel_id=uuid.uuid4(), where="Basel"))
    data = {**envelope.data, "added_later": True}
    assert REGISTRY.decode(envelope.model_copy(update={"data": data}))
