"""A real SMTP server for tests, and the emails table as it stands."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from email_service.adapters.tables import emails
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
    """An aiosmtpd server on a free port of 127.0.0.1; ``restart`` drops every connection."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.collector = Collector()
        self._controller: Controller | None = None

    @property
    def deliveries(self) -> list[Delivery]:
        return self.collector.deliveries

    def start(self) -> None:
        self._controller = Controller(self.collector, hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


async def email_rows(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with sessions() as session:
        return list(await session.execute(select(emails).order_by(emails.c.sent_at)))


async def count_emails(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(emails))).scalar_one())
