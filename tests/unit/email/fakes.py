"""In-memory stand-ins for the email service's database side, behind its Protocols.

``FakeEmailDatabase`` is what has been committed: the ``emails`` rows and the
events in the outbox. A ``FakeUnitOfWork`` is one transaction on it, used as the
consumer and the routes use the real one: ``async with FakeUnitOfWork(db) as uow``
commits when the block ends and rolls everything back if it raises (the claims
it made and the events it emitted), as PostgreSQL would.

One transaction at a time: how concurrent claims of one email wait on the
primary key is PostgreSQL's business, tested in tests/integration/email.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import events.testing
from email_service.adapters.repository import EmailRepository
from email_service.domain.emails import SentEmail
from events import Event
from shop_contract import EmailKind

Key = tuple[UUID, EmailKind]


@dataclass(frozen=True)
class EmailRow:
    """One row of ``emails``."""

    order_id: UUID
    kind: EmailKind
    recipient: str
    message_id: str
    sent_at: datetime


class Clock:
    """A clock that moves one second each time it is read: every timestamp differs."""

    def __init__(self, start: datetime = datetime(2025, 1, 1, tzinfo=UTC)) -> None:
        self._next = start

    def __call__(self) -> datetime:
        now, self._next = self._next, self._next + timedelta(seconds=1)
        return now


@dataclass
class FakeEmailDatabase:
    """What committed transactions left behind."""

    emails: dict[Key, EmailRow] = field(default_factory=dict)
    outbox: list[Event] = field(default_factory=list)
    clock: Callable[[], datetime] = field(default_factory=Clock)


class FakeEmailRepository:
    """``EmailRepository`` over a dict: the rows one transaction sees and writes."""

    def __init__(
        self,
        rows: dict[Key, EmailRow] | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.rows: dict[Key, EmailRow] = dict(rows or {})
        self._clock = clock or Clock()

    async def claim(
        self, *, order_id: UUID, kind: EmailKind, recipient: str, message_id: str
    ) -> bool:
        if (order_id, kind) in self.rows:
            return False
        self.rows[order_id, kind] = EmailRow(order_id, kind, recipient, message_id, self._clock())
        return True

    async def mark_sent(self, *, order_id: UUID, kind: EmailKind) -> datetime:
        claimed = self.rows.get((order_id, kind))
        if claimed is None:
            raise AssertionError(f"mark_sent of an unclaimed email: {order_id} {kind}")
        sent = self.rows[order_id, kind] = replace(claimed, sent_at=self._clock())
        return sent.sent_at

    async def for_order(self, order_id: UUID) -> Sequence[SentEmail]:
        rows = [row for row in self.rows.values() if row.order_id == order_id]
        return [_public(row) for row in sorted(rows, key=lambda row: (row.sent_at, row.kind))]


def _public(row: EmailRow) -> SentEmail:
    return SentEmail(
        order_id=row.order_id, kind=row.kind, recipient=row.recipient, sent_at=row.sent_at
    )


class FakeUnitOfWork(events.testing.FakeUnitOfWork):
    """``UnitOfWork`` in memory: a working copy of ``database``, committed on success."""

    def __init__(self, database: FakeEmailDatabase | None = None) -> None:
        super().__init__()
        self.database = database if database is not None else FakeEmailDatabase()
        self._repository = FakeEmailRepository(self.database.emails, clock=self.database.clock)
        self.emails: EmailRepository = self._repository

    def keep(self) -> None:
        self.database.emails = dict(self._repository.rows)
        self.database.outbox.extend(self.emitted)
