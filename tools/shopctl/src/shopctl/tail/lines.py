"""One line per event on the wire: what it is, whose it is, how far into its order."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from events import Envelope, MalformedMessage
from rich.text import Text

from shopctl.services import colour_of, producer_of

ORDER_CREATED = "order.created"
REMEMBERED_ORDERS = 10_000  # a long tail must not grow without bound
SHORT_ID = 8


@dataclass(frozen=True, slots=True)
class TailEvent:
    received_at: datetime
    routing_key: str
    event_type: str
    order_id: str | None
    event_id: str | None
    occurred_at: datetime | None
    problem: str | None = None  # set when the body is not an event envelope

    @property
    def service(self) -> str:
        return producer_of(self.event_type or self.routing_key)

    @classmethod
    def decode(
        cls,
        body: bytes,
        *,
        routing_key: str,
        received_at: datetime,
        message_id: str | None = None,
        correlation_id: str | None = None,
        message_type: str | None = None,
    ) -> TailEvent:
        """From the envelope when it parses, from the AMQP properties otherwise."""
        try:
            envelope = Envelope.from_body(body)
        except MalformedMessage as exc:
            return cls(
                received_at=received_at,
                routing_key=routing_key,
                event_type=message_type or routing_key,
                order_id=correlation_id,
                event_id=message_id,
                occurred_at=None,
                problem=str(exc),
            )
        return cls(
            received_at=received_at,
            routing_key=routing_key,
            event_type=envelope.type,
            order_id=envelope.correlation_id,
            event_id=str(envelope.id),
            occurred_at=envelope.occurred_at,
        )


class OrderClock:
    """When each order's story began: its ``order.created``, else its first event seen."""

    def __init__(self, capacity: int = REMEMBERED_ORDERS) -> None:
        self._capacity = capacity
        self._started: OrderedDict[str, tuple[datetime, bool]] = OrderedDict()

    def elapsed(self, event: TailEvent) -> timedelta | None:
        if event.order_id is None:
            return None
        at = event.occurred_at or event.received_at
        known = self._started.get(event.order_id)
        is_created = event.event_type == ORDER_CREATED
        if known is None or (is_created and not known[1]):
            known = (at, is_created)
            self._started[event.order_id] = known
            if len(self._started) > self._capacity:
                self._started.popitem(last=False)
        self._started.move_to_end(event.order_id)
        return at - known[0]


def format_line(event: TailEvent, elapsed: timedelta | None) -> Text:
    service = event.service
    line = Text.assemble(
        (event.received_at.astimezone().strftime("%H:%M:%S.%f")[:-3], "dim"),
        "  ",
        (f"{service:<9}", colour_of(service)),
        " ",
        (f"{event.event_type:<20}", "bold"),
        " ",
        (event.order_id or "-", ""),
        "  ",
        ((event.event_id or "-")[:SHORT_ID], "dim"),
        "  ",
        (_duration(elapsed), "cyan"),
    )
    if event.problem is not None:
        line.append(f"  ! {event.problem}", style="red")
    return line


def _duration(elapsed: timedelta | None) -> str:
    if elapsed is None:
        return "-"
    seconds = elapsed.total_seconds()
    sign = "-" if seconds < 0 else "+"
    return f"{sign}{abs(seconds):.3f}s"
