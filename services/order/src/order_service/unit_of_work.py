"""The order service's unit of work: its repositories and ``emit``, over one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from events import Envelope, Event, Transaction

from order_service.adapters.repository import (
    Catalogue,
    IdempotencyKeys,
    OrderRepository,
    SqlCatalogue,
    SqlIdempotencyKeys,
    SqlOrderRepository,
)


class UnitOfWork(Protocol):
    catalogue: Catalogue
    orders: OrderRepository
    idempotency_keys: IdempotencyKeys
    # The event being handled, when a delivery opened this unit of work.
    caused_by: Envelope | None

    def emit(self, event: Event) -> Envelope:
        """Stage ``event``: it is published if and only if the transaction commits."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed."""


class SqlUnitOfWork:
    def __init__(self, tx: Transaction) -> None:
        self.catalogue: Catalogue = SqlCatalogue(tx.session)
        self.orders: OrderRepository = SqlOrderRepository(tx.session)
        self.idempotency_keys: IdempotencyKeys = SqlIdempotencyKeys(tx.session)
        self.caused_by = tx.caused_by
        self.emit = tx.emit
        self.after_commit = tx.after_commit
