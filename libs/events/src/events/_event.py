"""The base of every event payload: a frozen, versioned pydantic model.

An event type names itself (``TYPE``, also its routing key), its schema version,
and which of its fields says what it is about (``CORRELATED_BY``): every event
of one aggregate shares that value, so the outbox keeps their sequence and logs
can follow them across services.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    """Subclass per event type: ``TYPE = "thing.happened"`` and the fields it carries."""

    # Tolerant reader: unknown fields are ignored so producers can add fields
    # within a schema version; a breaking change gets a new VERSION.
    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    # The field whose value is the correlation id; None: each event stands alone.
    CORRELATED_BY: ClassVar[str | None] = None

    def correlation_id(self) -> str | None:
        if self.CORRELATED_BY is None:
            return None
        return str(getattr(self, self.CORRELATED_BY))
