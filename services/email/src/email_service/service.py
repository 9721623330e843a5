"""The email service, as the service kit runs it."""

from __future__ import annotations

from pathlib import Path

from service_kit import Runtime, ServiceDefinition

from email_service.adapters.mail import SmtpMailSender
from email_service.api.routes import emails_router
from email_service.handlers import MAIL_SENDER, build_handlers
from email_service.settings import Settings


async def on_start(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    # Connections open on the first send: a down SMTP server never stops the
    # service from starting (sends fail and are retried instead).
    runtime.resources[MAIL_SENDER] = SmtpMailSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        timeout=settings.smtp_timeout,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        start_tls=settings.smtp_starttls,
    )


async def on_stop(runtime: Runtime) -> None:
    sender = runtime.resources.get(MAIL_SENDER)
    if isinstance(sender, SmtpMailSender):
        await sender.aclose()


SERVICE = ServiceDefinition(
    name="email",
    settings_type=Settings,
    migrations=Path(__file__).parent / "migrations",
    routers=[emails_router],
    handlers=build_handlers,
    on_start=on_start,
    on_stop=on_stop,
    description=(
        "Emails customers about their orders (received, confirmed, cancelled), "
        "exactly once per order and kind, over SMTP."
    ),
)
