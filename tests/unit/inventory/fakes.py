"""In-memory stand-ins for the inventory's database side, behind its Protocols.

``FakeInventoryDatabase`` is what has been committed: stock levels, reservations
and the envelopes in the outbox. A ``FakeUnitOfWork`` is one transaction on it,
used as the consumer and the routes use the real one: ``async with
FakeUnitOfWork(db) as uow`` commits when the block ends and, if it raises,
leaves the database as it was, as PostgreSQL would.

The fakes keep the repositories' preconditions: a stock level is saved only
after this transaction locked its row, a reservation changes status only if it
exists. One transaction at a time: lock order and races are PostgreSQL's
business, tested in tests/integration/inventory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from uuid import UUID

import events.testing
from events import Envelope
from inventory_service.adapters.repository import ReservationRepository, StockRepository
from inventory_service.domain import Reservation, ReservationStatus, StockLevel

# What the migrations seed (inventory_service/migrations/0002_seed_stock.py).
SEEDED_SKUS = ("KEYBOARD-01", "MOUSE-01", "MONITOR-27", "USB-C-HUB", "HEADSET-01", "WEBCAM-01")


def _seeded_stock() -> dict[str, StockLevel]:
    return {sku: StockLevel(sku, 100, 0) for sku in SEEDED_SKUS}


@dataclass
class FakeInventoryDatabase:
    """What committed transactions left behind (100 of each seeded SKU to start with)."""

    stock: dict[str, StockLevel] = field(default_factory=_seeded_stock)
    reservations: dict[UUID, Reservation] = field(default_factory=dict)
    outbox: list[Envelope] = field(default_factory=list)


class FakeStockRepository:
    """``StockRepository`` over a dict: the rows one transaction sees and writes."""

    def __init__(self, rows: dict[str, StockLevel] | None = None) -> None:
        self.rows: dict[str, StockLevel] = dict(_seeded_stock() if rows is None else rows)
        # SKUs this transaction has locked, in the order it locked them.
        self.locked: list[str] = []

    async def get(self, sku: str) -> StockLevel | None:
        return self.rows.get(sku)

    async def lock(self, skus: Iterable[str]) -> dict[str, StockLevel]:
        found = {sku: self.rows[sku] for sku in sorted(set(skus)) if sku in self.rows}
        self.locked += [sku for sku in found if sku not in self.locked]
        return found

    async def save(self, levels: Iterable[StockLevel]) -> None:
        for level in levels:
            if level.sku not in self.locked:
                raise AssertionError(f"save of stock {level.sku} before lock() locked its row")
            self.rows[level.sku] = level

    async def set_available(self, sku: str, available: int) -> StockLevel:
        existing = self.rows.get(sku)
        level = (
            StockLevel(sku, available, 0)
            if existing is None
            else replace(existing, available=available)
        )
        self.rows[sku] = level
        return level


class FakeReservationRepository:
    """``ReservationRepository`` over a dict: one reservation per order, never deleted."""

    def __init__(self, rows: dict[UUID, Reservation] | None = None) -> None:
        self.rows: dict[UUID, Reservation] = dict(rows or {})
        # Reservations this transaction has read with for_update=True.
        self.locked: set[UUID] = set()

    async def get(self, order_id: UUID, *, for_update: bool = False) -> Reservation | None:
        if for_update:
            self.locked.add(order_id)
        return self.rows.get(order_id)

    async def add(self, reservation: Reservation) -> bool:
        if reservation.order_id in self.rows:
            return False
        self.rows[reservation.order_id] = reservation
        return True

    async def lock_all(self, order_ids: Iterable[UUID]) -> set[str]:
        found = sorted(order_id for order_id in set(order_ids) if order_id in self.rows)
        self.locked.update(found)
        return {line.sku for order_id in found for line in self.rows[order_id].lines}

    async def set_status(self, order_id: UUID, status: ReservationStatus) -> None:
        existing = self.rows.get(order_id)
        if existing is None:
            raise AssertionError(f"set_status of order {order_id}, which has no reservation")
        self.rows[order_id] = replace(existing, status=status)


class FakeUnitOfWork(events.testing.FakeUnitOfWork):
    """``UnitOfWork`` in memory: a working copy of ``database``, committed on success.

    ``caused_by`` is the envelope being handled, as the consumer sets it.
    """

    def __init__(
        self, database: FakeInventoryDatabase | None = None, *, caused_by: Envelope | None = None
    ) -> None:
        super().__init__(caused_by=caused_by)
        self.database = database if database is not None else FakeInventoryDatabase()
        self._stock = FakeStockRepository(self.database.stock)
        self._reservations = FakeReservationRepository(self.database.reservations)
        self.stock: StockRepository = self._stock
        self.reservations: ReservationRepository = self._reservations

    @property
    def locked_stock(self) -> list[str]:
        """SKUs whose rows this transaction locked, in locking order."""
        return list(self._stock.locked)

    @property
    def locked_reservations(self) -> set[UUID]:
        return set(self._reservations.locked)

    def keep(self) -> None:
        self.database.stock = self._stock.rows
        self.database.reservations = self._reservations.rows
        self.database.outbox.extend(self.envelopes)
