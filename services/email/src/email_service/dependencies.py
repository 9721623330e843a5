"""What the email service's code needs beyond the handler's unit of work: an SMTP
sender, and short transactions of its own (a claim commits before SMTP is spoken)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from service_kit import Database

from email_service.adapters.mail import MailSender, SmtpMailSender
from email_service.settings import Settings
from email_service.unit_of_work import SqlUnitOfWork, UnitOfWork


@dataclass(frozen=True, slots=True)
class Dependencies:
    mail: MailSender
    from_address: str
    database: Database
    # How long a claim is held before another delivery may take it over: longer
    # than any send can take, shorter than the retry budget (1 s + 5 s + 30 s).
    claim_lease: timedelta

    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        return self.database.unit_of_work(SqlUnitOfWork)


@asynccontextmanager
async def open_dependencies(settings: Settings, database: Database) -> AsyncIterator[Dependencies]:
    # Connections open on the first send: a down SMTP server never stops the
    # service from starting (sends fail and are retried instead).
    sender = SmtpMailSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        timeout=settings.smtp_timeout,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        start_tls=settings.smtp_starttls,
    )
    try:
        yield Dependencies(
            mail=sender,
            from_address=settings.smtp_from,
            database=database,
            claim_lease=timedelta(seconds=3 * settings.smtp_timeout),
        )
    finally:
        await sender.aclose()
