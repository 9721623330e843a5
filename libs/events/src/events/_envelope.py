"""The envelope every event travels in.

The body is the whole envelope as JSON, so a message is self-describing; the AMQP
properties mirror it (``message_id`` = event id, ``type`` = routing key,
``correlation_id``) and the headers carry causation id, schema version and W3C
trace context.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from events._errors import MalformedMessage
from events._event import Event


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
    def wrap(cls, event: Event, *, caused_by: Envelope | None = None) -> Envelope:
        """A new envelope for ``event``; ``caused_by`` is the event being handled, if any.

        The correlation id is the event's own (its ``CORRELATED_BY`` field), else
        its cause's, else its own id.
        """
        event_id = uuid4()
        correlation = event.correlation_id()
        if correlation is None:
            correlation = caused_by.correlation_id if caused_by else str(event_id)
        return cls(
            id=event_id,
            type=event.TYPE,
            version=event.VERSION,
            occurred_at=datetime.now(UTC),
            correlation_id=correlation,
            causation_id=caused_by.id if caused_by else None,
            data=event.model_dump(mode="json"),
        )

    @classmethod
    def from_body(cls, body: bytes) -> Envelope:
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            raise MalformedMessage(f"not an event envelope: {summary(exc)}") from exc


def summary(exc: ValidationError) -> str:
    """One line naming each bad field: keeps DLQ headers and logs readable."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )[:500]
