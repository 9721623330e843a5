"""A reservation: what the inventory did for one order, and where it may go next.

::

    (order.created)   ──► RESERVED ──(order.confirmed)──► COMMITTED
                      └─► REJECTED        └─(order.cancelled)──► RELEASED
    (order.cancelled first) ──► CANCELLED   (tombstone: a late order.created reserves nothing)

Events may arrive twice or out of order, so a transition that already happened,
or that has nothing to undo, is a no-op; only contradictions are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from uuid import UUID

from inventory_service.domain.stock import Line


class ReservationStatus(StrEnum):
    RESERVED = "RESERVED"
    REJECTED = "REJECTED"
    RELEASED = "RELEASED"
    COMMITTED = "COMMITTED"
    # Tombstone: the order was cancelled before anything was reserved for it.
    CANCELLED = "CANCELLED"


class ReservationConflict(Exception):
    """The order's events contradict each other; retrying cannot reconcile them."""


@dataclass(frozen=True, slots=True)
class Reservation:
    order_id: UUID
    status: ReservationStatus
    lines: tuple[Line, ...] = ()

    @classmethod
    def tombstone(cls, order_id: UUID) -> Reservation:
        return cls(order_id=order_id, status=ReservationStatus.CANCELLED)

    @property
    def holds_stock(self) -> bool:
        return self.status is ReservationStatus.RESERVED

    def release(self) -> Reservation:
        """The order was cancelled: RESERVED → RELEASED; nothing held → unchanged."""
        if self.status is ReservationStatus.COMMITTED:
            raise ReservationConflict(f"order {self.order_id} cancelled after it was committed")
        if self.status is ReservationStatus.RESERVED:
            return replace(self, status=ReservationStatus.RELEASED)
        return self

    def commit(self) -> Reservation:
        """The order was confirmed: RESERVED → COMMITTED; already COMMITTED → unchanged."""
        if self.status is ReservationStatus.RESERVED:
            return replace(self, status=ReservationStatus.COMMITTED)
        if self.status is ReservationStatus.COMMITTED:
            return self
        raise ReservationConflict(
            f"order {self.order_id} confirmed but its reservation is {self.status}"
        )
