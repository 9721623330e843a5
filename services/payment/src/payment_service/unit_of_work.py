"""The payment service's unit of work: its repository and ``emit``, over one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from events import Envelope, Event, Transaction

from payment_service.adapters.repository import PaymentRepository, SqlPaymentRepository


class UnitOfWork(Protocol):
    payments: PaymentRepository

    def emit(self, event: Event) -> Envelope:
        """Stage ``event``: it is published if and only if the transaction commits."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed."""


class SqlUnitOfWork:
    def __init__(self, tx: Transaction) -> None:
        self.payments: PaymentRepository = SqlPaymentRepository(tx.session)
        self.emit = tx.emit
        self.after_commit = tx.after_commit
