"""The order service's unit of work: its repositories and ``emit``, over one transaction."""

from __future__ import annotations

from typing import Protocol

import service_kit
from events import Transaction

from order_service.adapters.repository import (
    Catalogue,
    IdempotencyKeys,
    OrderRepository,
    SqlCatalogue,
    SqlIdempotencyKeys,
    SqlOrderRepository,
)


class UnitOfWork(service_kit.UnitOfWork, Protocol):
    catalogue: Catalogue
    orders: OrderRepository
    idempotency_keys: IdempotencyKeys


class SqlUnitOfWork(service_kit.SqlUnitOfWork):
    def __init__(self, tx: Transaction) -> None:
        super().__init__(tx)
        self.catalogue: Catalogue = SqlCatalogue(tx.session)
        self.orders: OrderRepository = SqlOrderRepository(tx.session)
        self.idempotency_keys: IdempotencyKeys = SqlIdempotencyKeys(tx.session)
