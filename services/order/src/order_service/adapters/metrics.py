"""Prometheus metrics of the order business (served by the shared /metrics)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge

from order_service.domain.status import OrderStatus

ORDERS = Counter(
    "orders",  # exposed as orders_total
    "Orders entering each status (PENDING when placed, then CONFIRMED or CANCELLED).",
    ["status"],
)
for _status in OrderStatus:
    ORDERS.labels(_status.value)  # every series exists from the start, at 0


def order_entered(status: OrderStatus) -> Callable[[], None]:
    """The counter bump for an order entering ``status``: run it after the commit,
    so a rolled-back (then retried) transaction does not count twice."""
    return ORDERS.labels(status.value).inc


DEADLINES_EXCEEDED = Counter(
    "orders_deadline_exceeded",  # exposed as orders_deadline_exceeded_total
    "Orders cancelled because they were still PENDING at their deadline.",
)
OLDEST_PENDING_AGE = Gauge(
    "orders_pending_oldest_age_seconds",
    "Age of the oldest PENDING order (0 when none is pending), as of the last sweep.",
)
