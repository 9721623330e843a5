"""The envelope every event travels in, and its mapping to and from AMQP.

The body is the whole envelope as JSON, so a message is self-describing; the AMQP
properties mirror it (``message_id`` = event id, ``type`` = routing key,
``correlation_id`` = order id) and the headers carry causation id, schema version
and W3C trace context, as the contract asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from events.catalogue import Event
from events.errors import MalformedMessage

CONTENT_TYPE = "application/json"
CAUSATION_HEADER = "x-causation-id"
VERSION_HEADER = "x-schema-version"


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID
    type: str
    version: int
    occurred_at: AwareDatetime
    correlation_id: str
    causation_id: UUID | None = None
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls, event: Event, *, correlation_id: str | None = None, causation_id: UUID | None = None
    ) -> Envelope:
        return cls(
            id=uuid4(),
            type=event.TYPE,
            version=event.VERSION,
            occurred_at=datetime.now(UTC),
            correlation_id=correlation_id or str(event.order_id),
            causation_id=causation_id,
            data=event.model_dump(mode="json"),
        )

    @classmethod
    def from_body(cls, body: bytes) -> Envelope:
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            raise MalformedMessage(f"not an event envelope: {_summary(exc)}") from exc


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What a publisher needs to put one event on the wire."""

    routing_key: str
    message_id: str
    correlation_id: str
    body: bytes
    timestamp: datetime
    headers: dict[str, str | int] = field(default_factory=dict)

    @classmethod
    def from_envelope(
        cls, envelope: Envelope, trace_headers: dict[str, str] | None = None
    ) -> OutboundMessage:
        headers: dict[str, str | int] = {VERSION_HEADER: envelope.version, **(trace_headers or {})}
        if envelope.causation_id is not None:
            headers[CAUSATION_HEADER] = str(envelope.causation_id)
        return cls(
            routing_key=envelope.type,
            message_id=str(envelope.id),
            correlation_id=envelope.correlation_id,
            body=envelope.model_dump_json().encode(),
            timestamp=envelope.occurred_at,
            headers=headers,
        )


def _summary(exc: ValidationError) -> str:
    # One line naming each bad field keeps DLQ headers and logs readable.
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )[:500]
