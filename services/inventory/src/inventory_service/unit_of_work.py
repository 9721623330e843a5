"""The inventory's unit of work: its repositories and ``emit``, over one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from events import Envelope, Event, Transaction

from inventory_service.adapters.repository import (
    ReservationRepository,
    SqlReservationRepository,
    SqlStockRepository,
    StockRepository,
)


class UnitOfWork(Protocol):
    stock: StockRepository
    reservations: ReservationRepository

    def emit(self, event: Event) -> Envelope:
        """Stage ``event``: it is published if and only if the transaction commits."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed."""


class SqlUnitOfWork:
    def __init__(self, tx: Transaction) -> None:
        self.stock: StockRepository = SqlStockRepository(tx.session)
        self.reservations: ReservationRepository = SqlReservationRepository(tx.session)
        self.emit = tx.emit
        self.after_commit = tx.after_commit
