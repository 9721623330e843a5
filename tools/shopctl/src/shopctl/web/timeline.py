"""Each order's story as the tap saw it: steps across services, in the order they
crossed the broker, with the time since the order began and since the step before.

Times are when the tap received each message: one clock for every step, so the
gaps between steps are what a person watching the broker would have measured.
Memory is bounded: the most recently active orders are kept, each with its most
recent steps.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shopctl.web import labels
from shopctl.web.observe import Kind, Observation

MAX_ORDERS = 200
MAX_STEPS = 100
NO_ORDER = "(no order id)"
STATUS_OF = {
    "order.created": "PENDING",
    "order.confirmed": "CONFIRMED",
    "order.cancelled": "CANCELLED",
}
FINAL = frozenset({"CONFIRMED", "CANCELLED"})


@dataclass(frozen=True, slots=True)
class Step:
    observation: Observation
    since_start: timedelta
    since_previous: timedelta | None

    def as_json(self) -> dict[str, Any]:
        seen = self.observation
        return {
            "order_id": seen.order_id or NO_ORDER,
            "kind": seen.kind.value,
            "event_type": seen.event_type,
            "service": seen.service,
            "publisher": seen.publisher,
            "expected_publisher": seen.expected_publisher,
            "trusted": seen.trusted,
            "event_id": seen.event_id,
            "short_event_id": labels.short_id(seen.event_id),
            "queue": seen.queue,
            "detail": seen.detail,
            "problem": seen.problem,
            "at": seen.received_at.isoformat(),
            "at_label": labels.clock(seen.received_at),
            "since_start_ms": round(self.since_start.total_seconds() * 1000),
            "since_start_label": labels.duration(self.since_start),
            "since_previous_label": labels.duration(self.since_previous),
            "replayable": seen.kind is Kind.DEAD_LETTER and bool(seen.queue and seen.event_id),
        }


@dataclass
class OrderTimeline:
    order_id: str
    started_at: datetime
    last_at: datetime
    steps: list[Step] = field(default_factory=list)
    status: str = "PENDING"
    retries: int = 0
    dead_letters: int = 0
    dropped: int = 0  # oldest steps let go past MAX_STEPS

    def add(self, seen: Observation, *, max_steps: int = MAX_STEPS) -> Step:
        previous = self.steps[-1].observation.received_at if self.steps else None
        step = Step(
            observation=seen,
            since_start=seen.received_at - self.started_at,
            since_previous=None if previous is None else seen.received_at - previous,
        )
        self.steps.append(step)
        if len(self.steps) > max_steps:
            del self.steps[0]
            self.dropped += 1
        self.last_at = max(self.last_at, seen.received_at)
        if seen.kind is Kind.EVENT and self.status not in FINAL:
            self.status = STATUS_OF.get(seen.event_type, self.status)
        self.retries += seen.kind is Kind.RETRY
        self.dead_letters += seen.kind is Kind.DEAD_LETTER
        return step

    def summary(self) -> dict[str, Any]:
        services = sorted({step.observation.service for step in self.steps})
        return {
            "order_id": self.order_id,
            "short_id": labels.short_id(self.order_id),
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "started_label": labels.clock(self.started_at),
            "duration_label": labels.duration(self.last_at - self.started_at, signed=False),
            "steps": len(self.steps) + self.dropped,
            "retries": self.retries,
            "dead_letters": self.dead_letters,
            "services": services,
            "dropped": self.dropped,
        }

    def as_json(self) -> dict[str, Any]:
        return {**self.summary(), "timeline": [step.as_json() for step in self.steps]}


class Timelines:
    """Every order seen, most recently active last; the least recently active go first."""

    def __init__(self, *, max_orders: int = MAX_ORDERS, max_steps: int = MAX_STEPS) -> None:
        self._orders: OrderedDict[str, OrderTimeline] = OrderedDict()
        self._max_orders = max_orders
        self._max_steps = max_steps

    def add(self, seen: Observation) -> tuple[Step, OrderTimeline]:
        key = seen.order_id or NO_ORDER
        order = self._orders.get(key)
        if order is None:
            order = OrderTimeline(key, started_at=seen.received_at, last_at=seen.received_at)
            self._orders[key] = order
            if len(self._orders) > self._max_orders:
                self._orders.popitem(last=False)
        self._orders.move_to_end(key)
        return order.add(seen, max_steps=self._max_steps), order

    def get(self, order_id: str) -> OrderTimeline | None:
        return self._orders.get(order_id)

    def __len__(self) -> int:
        return len(self._orders)

    def as_json(self) -> list[dict[str, Any]]:
        """Newest order first (by when it began)."""
        orders = sorted(self._orders.values(), key=lambda o: o.started_at, reverse=True)
        return [order.as_json() for order in orders]
