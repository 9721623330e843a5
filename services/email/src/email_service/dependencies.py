"""What the email service's code needs beyond its database: an SMTP sender."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from email_service.adapters.mail import MailSender, SmtpMailSender
from email_service.settings import Settings


@dataclass(frozen=True, slots=True)
class Dependencies:
    mail: MailSender
    from_address: str


@asynccontextmanager
async def open_dependencies(settings: Settings) -> AsyncIterator[Dependencies]:
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
        yield Dependencies(mail=sender, from_address=settings.smtp_from)
    finally:
        await sender.aclose()
