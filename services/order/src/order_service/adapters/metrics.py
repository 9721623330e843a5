"""Prometheus metrics of the order business (served by the shared /metrics)."""

from __future__ import annotations

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from order_service.domain.status import OrderStatus

ORDERS = Counter(
    "orders",  # exposed as orders_total
    "Orders entering each status (PENDING when placed, then CONFIRMED or CANCELLED).",
    ["status"],
)
for _status in OrderStatus:
    ORDERS.labels(_status.value)  # every series exists from the start, at 0


def count_after_commit(session: AsyncSession, status: OrderStatus) -> None:
    """Count an order entering ``status`` once ``session``'s transaction commits.

    A rolled-back (then retried) transaction must not count twice.
    """

    def on_commit(_: Session) -> None:
        ORDERS.labels(status.value).inc()

    event.listen(session.sync_session, "after_commit", on_commit, once=True)
