"""A real SMTP server for tests, and the emails table as it stands."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import asyncpg
from aiosmtpd.controller import Controller
from email_service.adapters.mail import MailSender
from email_service.adapters.tables import emails
from email_service.dependencies import Dependencies
from email_service.unit_of_work import SqlUnitOfWork, UnitOfWork
from events import Transaction
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import ADMIN_DSN

CONSUMER = "email.events"
"""The email service's consumer name, as its inbox records it."""
SCRIPT = "<script>alert('x')</script>"
"""What a hostile customer types: it must reach the HTML part escaped."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Delivery:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def part(self, content_type: str) -> str:
        for part in self.message.iter_parts():
            if part.get_content_type() == content_type:
                return str(part.get_content())
        raise AssertionError(f"no {content_type} part")


@dataclass
class Collector:
    """aiosmtpd handler: keeps every accepted message; refuses some recipients."""

    deliveries: list[Delivery] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    # One entry per SMTP session that said EHLO: (client address, EHLO name).
    greetings: list[tuple[Any, str]] = field(default_factory=list)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.greetings.append((session.peer, hostname))
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.deliveries.append(
            Delivery(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        )
        return "250 Message accepted for delivery"

    def about(self, order_id: object) -> list[Delivery]:
        return [d for d in self.deliveries if d.message["X-Order-Id"] == str(order_id)]


class SmtpSink:
    """An aiosmtpd server on a free port of 127.0.0.1; ``stop`` drops every connection.

    ``smtputf8``: offer SMTPUTF8 (as Mailpit does), so internationalised addresses
    can be carried; off by default, as aiosmtpd (and many a server) has it."""

    def __init__(self, *, smtputf8: bool = False) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.collector = Collector()
        self.smtputf8 = smtputf8
        self._controller: Controller | None = None

    @property
    def deliveries(self) -> list[Delivery]:
        return self.collector.deliveries

    def start(self) -> None:
        self._controller = Controller(
            self.collector, hostname=self.host, port=self.port, enable_SMTPUTF8=self.smtputf8
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@contextmanager
def smtp_sink(*, smtputf8: bool = False) -> Iterator[SmtpSink]:
    sink = SmtpSink(smtputf8=smtputf8)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


async def email_rows(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    """Every row of ``emails`` (claimed, sent or failed), sent ones first, oldest first."""
    async with sessions() as session:
        query = select(emails).order_by(emails.c.sent_at, emails.c.claimed_at)
        return list(await session.execute(query))


async def count_emails(sessions: async_sessionmaker[AsyncSession], status: str = "sent") -> int:
    """How many emails are in ``status`` (``sent`` unless told)."""
    query = select(func.count()).select_from(emails).where(emails.c.status == status)
    async with sessions() as session:
        return int((await session.execute(query)).scalar_one())


async def terminate_backend_of(session: AsyncSession) -> None:
    """Terminate the server process behind ``session``'s connection (as an operator's
    ``pg_terminate_backend`` would) and wait until it is gone."""
    pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
    finally:
        await admin.close()


BeforeCommit = Callable[[int, Transaction], Awaitable[None]]


@dataclass
class Interrupted:
    """``Dependencies`` whose short transactions (claim, mark sent, give up) run as
    the service's do, except that ``before_commit(n, tx)`` runs at the end of the
    n-th one, just before its COMMIT: to break its connection there, say."""

    deps: Dependencies
    before_commit: BeforeCommit
    opened: int = 0

    @property
    def mail(self) -> MailSender:
        return self.deps.mail

    @property
    def from_address(self) -> str:
        return self.deps.from_address

    @property
    def claim_lease(self) -> timedelta:
        return self.deps.claim_lease

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        self.opened += 1
        number, opened = self.opened, list[Transaction]()

        def unit_of_work(tx: Transaction) -> SqlUnitOfWork:
            opened.append(tx)
            return SqlUnitOfWork(tx)

        async with self.deps.database.unit_of_work(unit_of_work) as uow:
            yield uow
            await self.before_commit(number, opened[0])
