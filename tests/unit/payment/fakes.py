"""In-memory stand-ins for the payment service's database side, behind its Protocols.

``FakePaymentDatabase`` is what has been committed: the payments and the events
in the outbox. A ``FakeUnitOfWork`` is one transaction on it, used as the
consumer and the routes use the real one: ``async with FakeUnitOfWork(db) as uow``
commits when the block ends and rolls everything back if it raises (the
payment rows it wrote and the events it emitted), as PostgreSQL would.

One transaction at a time: the row locks that serialize concurrent deliveries
are PostgreSQL's business, tested in tests/integration/payment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from uuid import UUID

import events.testing
from events import Event
from payment_service.adapters.gateway import GatewayUnavailable
from payment_service.adapters.repository import PaymentRepository
from payment_service.adapters.sandbox_gateway import SandboxGateway
from payment_service.domain import Payment


@dataclass
class FakePaymentDatabase:
    """What committed transactions left behind."""

    payments: dict[UUID, Payment] = field(default_factory=dict)
    outbox: list[Event] = field(default_factory=list)


class FakePaymentRepository:
    """``PaymentRepository`` over a dict: the rows one transaction sees and writes."""

    def __init__(self, rows: dict[UUID, Payment] | None = None) -> None:
        self.rows: dict[UUID, Payment] = dict(rows or {})
        self._opened: set[UUID] = set()

    async def open(self, placeholder: Payment) -> tuple[Payment, bool]:
        self._opened.add(placeholder.order_id)
        existing = self.rows.get(placeholder.order_id)
        if existing is not None:
            return existing, False
        self.rows[placeholder.order_id] = placeholder
        return placeholder, True

    async def save(self, payment: Payment) -> None:
        if payment.order_id not in self._opened:
            raise AssertionError(f"save of payment {payment.order_id} before open locked it")
        # Like the UPDATE: the status and what comes with it; the charge stays as opened.
        self.rows[payment.order_id] = replace(
            self.rows[payment.order_id],
            status=payment.status,
            reason=payment.reason,
            authorization_id=payment.authorization_id,
        )

    async def get(self, order_id: UUID) -> Payment | None:
        return self.rows.get(order_id)


class FakeUnitOfWork(events.testing.FakeUnitOfWork):
    """``UnitOfWork`` in memory: a working copy of ``database``, committed on success."""

    def __init__(self, database: FakePaymentDatabase | None = None) -> None:
        super().__init__()
        self.database = database if database is not None else FakePaymentDatabase()
        self._repository = FakePaymentRepository(self.database.payments)
        self.payments: PaymentRepository = self._repository

    def keep(self) -> None:
        self.database.payments = dict(self._repository.rows)
        self.database.outbox.extend(self.emitted)


class VoidFailsOnce(SandboxGateway):
    """A gateway whose first void times out."""

    def __init__(self) -> None:
        super().__init__()
        self.void_calls = 0

    async def void(self, authorization_id: str) -> None:
        self.void_calls += 1
        if self.void_calls == 1:
            raise GatewayUnavailable("void timed out")
        await super().void(authorization_id)
