"""A registry mapping (routing key, schema version) ↔ event model."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

from events._envelope import Envelope, summary
from events._errors import MalformedMessage, UnknownEventType
from events._event import Event


class EventRegistry:
    """The event models one system knows; built by the system's contract, passed in."""

    def __init__(self, models: Iterable[type[Event]]) -> None:
        self._models: dict[tuple[str, int], type[Event]] = {}
        for model in models:
            key = (model.TYPE, model.VERSION)
            if key in self._models:
                raise ValueError(f"two models registered for {key}")
            self._models[key] = model

    def model_for(self, event_type: str, version: int) -> type[Event]:
        try:
            return self._models[(event_type, version)]
        except KeyError:
            raise UnknownEventType(
                f"no model for event type {event_type!r} version {version}"
            ) from None

    def decode(self, envelope: Envelope) -> Event:
        model = self.model_for(envelope.type, envelope.version)
        try:
            return model.model_validate(envelope.data)
        except ValidationError as exc:
            raise MalformedMessage(
                f"{envelope.type} v{envelope.version} violates its schema: {summary(exc)}"
            ) from exc

    @property
    def models(self) -> tuple[type[Event], ...]:
        return tuple(self._models.values())

    @property
    def routing_keys(self) -> frozenset[str]:
        return frozenset(event_type for event_type, _ in self._models)
