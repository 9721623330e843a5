"""The inventory's business rules: pure, no I/O."""

from inventory_service.domain.reservation import (
    Decision,
    Reservation,
    ReservationConflict,
    ReservationStatus,
    commit,
    release,
    reserve,
)
from inventory_service.domain.stock import (
    INSUFFICIENT_STOCK,
    Line,
    Rejected,
    Reserved,
    StockLevel,
    commit_stock,
    demand,
    release_stock,
    reserve_stock,
)

__all__ = [
    "INSUFFICIENT_STOCK",
    "Decision",
    "Line",
    "Rejected",
    "Reservation",
    "ReservationConflict",
    "ReservationStatus",
    "Reserved",
    "StockLevel",
    "commit",
    "commit_stock",
    "demand",
    "release",
    "release_stock",
    "reserve",
    "reserve_stock",
]
