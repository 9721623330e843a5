"""A reservation: what the inventory did for one order, and where it may go next.

::

    (order.created)   ──► RESERVED ──(order.confirmed)──► COMMITTED
                      └─► REJECTED        └─(order.cancelled)──► RELEASED
    (order.cancelled first) ──► CANCELLED   (tombstone: a late order.created reserves nothing)

Events may arrive twice or out of order, so a transition that already happened,
or that has nothing to undo, is a no-op; only contradictions are errors. Each
decision returns the new stock levels to store and the event it causes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from uuid import UUID

from shop_contract import (
    InventoryRejected,
    InventoryReleased,
    InventoryReserved,
    OrderEvent,
    StockLine,
)

from inventory_service.domain.stock import (
    Line,
    Rejected,
    Reserved,
    StockLevel,
    commit_stock,
    release_stock,
    reserve_stock,
)


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


@dataclass(frozen=True, slots=True)
class Decision:
    """A reservation's new state, the stock levels that change, and what to announce."""

    reservation: Reservation
    stock: tuple[StockLevel, ...] = ()
    event: OrderEvent | None = None


def reserve(order_id: UUID, lines: tuple[Line, ...], stock: Mapping[str, StockLevel]) -> Decision:
    """Reserve every line or none: ``inventory.reserved`` or ``inventory.rejected``."""
    match reserve_stock(lines, stock):
        case Reserved(stock=levels):
            return Decision(
                Reservation(order_id, ReservationStatus.RESERVED, lines),
                levels,
                InventoryReserved(order_id=order_id, items=stock_lines(lines)),
            )
        case Rejected(missing_skus=missing, reason=reason):
            return Decision(
                Reservation(order_id, ReservationStatus.REJECTED, lines),
                (),
                InventoryRejected(order_id=order_id, missing_skus=missing, reason=reason),
            )


def release(reservation: Reservation, stock: Mapping[str, StockLevel]) -> Decision:
    """Give a held reservation's stock back: ``inventory.released``."""
    released = reservation.release()
    if not reservation.holds_stock:
        return Decision(released)
    return Decision(
        released,
        release_stock(reservation.lines, stock),
        InventoryReleased(order_id=reservation.order_id, items=stock_lines(reservation.lines)),
    )


def commit(reservation: Reservation, stock: Mapping[str, StockLevel]) -> Decision:
    """The goods are sold: a held reservation's stock leaves for good (no event)."""
    committed = reservation.commit()
    if not reservation.holds_stock:
        return Decision(committed)
    return Decision(committed, commit_stock(reservation.lines, stock))


def stock_lines(lines: tuple[Line, ...]) -> tuple[StockLine, ...]:
    return tuple(StockLine(sku=line.sku, quantity=line.quantity) for line in lines)
