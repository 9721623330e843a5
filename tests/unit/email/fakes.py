"""In-memory stand-ins for the email service's database side, behind its Protocols.

``FakeEmailDatabase`` is what has been committed: the ``emails`` rows and the
events in the outbox. A ``FakeUnitOfWork`` is one transaction on it, used as the
consumer and the routes use the real one: ``async with FakeUnitOfWork(db) as uow``
commits when the block ends and rolls everything back if it raises (the rows it
wrote and the events it emitted), as PostgreSQL would.

Several transactions may be open at once, as in the service: the handler's own
and the short ones ``FakeMailing.transaction()`` opens for the claim and the
mark. Each reads what is committed (PostgreSQL's READ COMMITTED) plus its own
writes, and its writes reach the database only when it commits. How concurrent
claims of one email wait on each other's row lock is PostgreSQL's business,
tested in tests/integration/email.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import events.testing
from email_service.adapters.mail import InMemoryMailSender
from email_service.adapters.repository import EmailRepository
from email_service.domain.emails import Claim, SentEmail
from events import Event
from shop_contract import EmailKind

Key = tuple[UUID, EmailKind]
Status = Literal["claimed", "sent", "failed"]

DEFAULT_LEASE = timedelta(seconds=30)
SENDER = "Shop <orders@shop.example>"


@dataclass(frozen=True)
class EmailRow:
    """One row of ``emails``."""

    order_id: UUID
    kind: EmailKind
    recipient: str
    message_id: str
    status: Status
    claimed_at: datetime
    attempts: int = 1
    sent_at: datetime | None = None
    announced: bool = False
    failure: str | None = None


class Clock:
    """A fake clock: moves a millisecond each time it is read (every timestamp
    differs, as ``clock_timestamp()``'s do), and as far as a test says."""

    TICK = timedelta(milliseconds=1)

    def __init__(self, start: datetime = datetime(2025, 1, 1, tzinfo=UTC)) -> None:
        self._now = start

    def __call__(self) -> datetime:
        now, self._now = self._now, self._now + self.TICK
        return now

    def advance(self, by: timedelta) -> None:
        self._now += by


@dataclass
class FakeEmailDatabase:
    """What committed transactions left behind."""

    emails: dict[Key, EmailRow] = field(default_factory=dict)
    outbox: list[Event] = field(default_factory=list)
    clock: Clock = field(default_factory=Clock)

    def row(self, order_id: UUID, kind: EmailKind) -> EmailRow:
        return self.emails[order_id, kind]


class FakeEmailRepository:
    """``EmailRepository`` over a dict of committed rows: what one transaction
    sees (committed rows, overlaid with its own writes) and writes (``written``)."""

    def __init__(
        self, committed: dict[Key, EmailRow] | None = None, *, clock: Clock | None = None
    ) -> None:
        self._committed: dict[Key, EmailRow] = committed if committed is not None else {}
        self.written: dict[Key, EmailRow] = {}
        self._clock = clock or Clock()

    def _get(self, key: Key) -> EmailRow | None:
        return self.written.get(key, self._committed.get(key))

    async def claim(
        self,
        *,
        order_id: UUID,
        kind: EmailKind,
        recipient: str,
        message_id: str,
        lease: timedelta,
    ) -> Claim:
        key = (order_id, kind)
        row, now = self._get(key), self._clock()
        if row is None:
            self.written[key] = EmailRow(
                order_id, kind, recipient, message_id, status="claimed", claimed_at=now
            )
            return Claim.MINE
        # Given up, or its sender went silent for longer than the lease: take it over.
        if row.status == "failed" or (row.status == "claimed" and row.claimed_at < now - lease):
            self.written[key] = replace(
                row, status="claimed", claimed_at=now, attempts=row.attempts + 1, failure=None
            )
            return Claim.MINE
        return Claim.SENT if row.status == "sent" else Claim.BUSY

    async def mark_sent(self, *, order_id: UUID, kind: EmailKind) -> datetime:
        row = self._get((order_id, kind))
        if row is None:
            raise AssertionError(f"mark_sent of an unclaimed email: {order_id} {kind}")
        sent = self.written[order_id, kind] = replace(row, status="sent", sent_at=self._clock())
        assert sent.sent_at is not None
        return sent.sent_at

    async def mark_failed(self, *, order_id: UUID, kind: EmailKind, reason: str) -> None:
        row = self._get((order_id, kind))
        if row is not None and row.status == "claimed":
            self.written[order_id, kind] = replace(row, status="failed", failure=reason[:1000])

    async def announce(self, *, order_id: UUID, kind: EmailKind) -> bool:
        row = self._get((order_id, kind))
        if row is None or row.status != "sent" or row.announced:
            return False
        self.written[order_id, kind] = replace(row, announced=True)
        return True

    async def for_order(self, order_id: UUID) -> Sequence[SentEmail]:
        keys = {*self._committed, *self.written}
        rows = [row for key in keys if (row := self._get(key)) is not None]
        sent = [row for row in rows if row.order_id == order_id and row.status == "sent"]
        return [_public(row) for row in sorted(sent, key=lambda row: (row.sent_at, row.kind))]


def _public(row: EmailRow) -> SentEmail:
    assert row.sent_at is not None
    return SentEmail(
        order_id=row.order_id, kind=row.kind, recipient=row.recipient, sent_at=row.sent_at
    )


class FakeUnitOfWork(events.testing.FakeUnitOfWork):
    """``UnitOfWork`` in memory: one transaction on ``database``, committed on success.

    ``commit_error``: the commit fails with it instead (the connection died at
    COMMIT, say): nothing is kept and the error comes out of the ``async with``.
    """

    def __init__(
        self,
        database: FakeEmailDatabase | None = None,
        *,
        commit_error: BaseException | None = None,
    ) -> None:
        super().__init__()
        self.database = database if database is not None else FakeEmailDatabase()
        self._repository = FakeEmailRepository(self.database.emails, clock=self.database.clock)
        self.emails: EmailRepository = self._repository
        self._commit_error = commit_error

    def commit(self) -> None:
        if self._commit_error is not None:
            self.rollback()
            raise self._commit_error
        super().commit()

    def keep(self) -> None:
        self.database.emails.update(self._repository.written)
        self.database.outbox.extend(self.emitted)


@dataclass
class FakeMailing:
    """The service layer's ``Mailing`` in memory: the in-memory sender, and short
    transactions of its own on the same ``FakeEmailDatabase``, each committed when
    its block ends.

    ``lose_commits(None, error)``: of the next transactions it opens, the first
    commits and the second's commit fails with ``error``.
    """

    database: FakeEmailDatabase
    mail: InMemoryMailSender = field(default_factory=InMemoryMailSender)
    from_address: str = SENDER
    claim_lease: timedelta = DEFAULT_LEASE
    # Every transaction opened, oldest first, to see what each did.
    transactions: list[FakeUnitOfWork] = field(default_factory=list)
    _commit_errors: list[BaseException | None] = field(default_factory=list)

    def lose_commits(self, *errors: BaseException | None) -> None:
        self._commit_errors.extend(errors)

    def transaction(self) -> FakeUnitOfWork:
        error = self._commit_errors.pop(0) if self._commit_errors else None
        uow = FakeUnitOfWork(self.database, commit_error=error)
        self.transactions.append(uow)
        return uow
