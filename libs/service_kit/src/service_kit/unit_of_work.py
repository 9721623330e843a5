"""What every service's unit of work has: ``emit``, ``after_commit`` and the event
being handled. A service adds its repositories:

    class UnitOfWork(service_kit.UnitOfWork, Protocol):
        payments: PaymentRepository

    class SqlUnitOfWork(service_kit.SqlUnitOfWork):
        def __init__(self, tx: Transaction) -> None:
            super().__init__(tx)
            self.payments = SqlPaymentRepository(tx.session)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from events import Envelope, Event, Transaction


class UnitOfWork(Protocol):
    # The event being handled, when a delivery opened this unit of work.
    caused_by: Envelope | None

    def emit(self, event: Event, *, trace: Mapping[str, str] | None = None) -> Envelope:
        """Stage ``event``: it is published if and only if the transaction commits.
        ``trace``: the request's trace it continues, when not the current one."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (counters, never twice)."""


class SqlUnitOfWork:
    """A service's repositories over one open ``Transaction`` (see ``Database.unit_of_work``)."""

    def __init__(self, tx: Transaction) -> None:
        self.caused_by = tx.caused_by
        self.emit = tx.emit
        self.after_commit = tx.after_commit
