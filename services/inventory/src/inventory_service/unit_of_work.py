"""The inventory's unit of work: its repositories and ``emit``, over one transaction."""

from __future__ import annotations

from typing import Protocol

import service_kit
from events import Transaction

from inventory_service.adapters.repository import (
    ReservationRepository,
    SqlReservationRepository,
    SqlStockRepository,
    StockRepository,
)


class UnitOfWork(service_kit.UnitOfWork, Protocol):
    stock: StockRepository
    reservations: ReservationRepository


class SqlUnitOfWork(service_kit.SqlUnitOfWork):
    def __init__(self, tx: Transaction) -> None:
        super().__init__(tx)
        self.stock: StockRepository = SqlStockRepository(tx.session)
        self.reservations: ReservationRepository = SqlReservationRepository(tx.session)
