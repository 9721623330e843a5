"""W3C trace context across the broker: injected when an event is written to the
outbox, extracted when it is consumed, so one trace spans HTTP → outbox → consumers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

tracer = trace.get_tracer("events")


def current_trace_headers() -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``, ...): what an
    event emitted now continues."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def consume_span(event_type: str, headers: Mapping[str, object]) -> Iterator[None]:
    carrier = {k: v for k, v in headers.items() if isinstance(v, str)}
    parent = propagate.extract(carrier)
    with tracer.start_as_current_span(
        f"{event_type} process", context=parent, kind=SpanKind.CONSUMER
    ):
        yield
