"""Order events in, one email per order and kind out.

Each kind of email is independent of the others: ``order.cancelled`` handled
before a (retried) ``order.created`` still sends both, once each; nothing here
assumes the order events arrive in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from events import (
    EmailSent,
    Event,
    Handler,
    MessageContext,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    PermanentError,
)
from service_kit import Runtime

from email_service.adapters import repository
from email_service.adapters.mail import MailError, MailRejected, MailSender
from email_service.domain.emails import (
    OrderEmail,
    order_cancelled_email,
    order_confirmed_email,
    order_received_email,
)
from email_service.metrics import EMAIL_DUPLICATES, EMAIL_FAILURES, EMAILS_SENT
from email_service.settings import Settings

log = structlog.get_logger(__name__)

MAIL_SENDER = "mail_sender"


@dataclass(frozen=True, slots=True)
class EmailHandlers:
    sender: MailSender
    from_address: str

    async def on_order_created(self, event: OrderCreated, ctx: MessageContext) -> None:
        await self.send_once(order_received_email(event), ctx)

    async def on_order_confirmed(self, event: OrderConfirmed, ctx: MessageContext) -> None:
        await self.send_once(order_confirmed_email(event), ctx)

    async def on_order_cancelled(self, event: OrderCancelled, ctx: MessageContext) -> None:
        await self.send_once(order_cancelled_email(event), ctx)

    async def send_once(self, email: OrderEmail, ctx: MessageContext) -> None:
        """Send ``email`` unless this order already got one of its kind.

        In the handler's transaction: claim ``(order_id, kind)`` in ``emails``
        (INSERT ... ON CONFLICT DO NOTHING); an existing row means it was sent,
        so nothing happens. Otherwise send over SMTP, then write ``email.sent``
        to the outbox. If SMTP fails the exception rolls the transaction back,
        the claim disappears with it, and the consumer retries later.

        The one window left: the SMTP server accepted the email but the commit
        then failed (database gone, process killed). The claim is lost, so the
        retry sends the email again. It carries the same deterministic
        ``Message-ID`` (``<order_id.kind@shop.example>``), so a receiving system
        can drop the duplicate. A transaction cannot span an external SMTP
        server; this is as close to exactly-once as it gets.
        """
        claimed = await repository.claim(
            ctx.session,
            order_id=email.order_id,
            kind=email.kind,
            recipient=email.to,
            message_id=email.message_id,
        )
        if not claimed:
            EMAIL_DUPLICATES.labels(email.kind).inc()
            log.info("email.already_sent", kind=email.kind)
            return
        message = email.to_message(sender=self.from_address, date=datetime.now(UTC))
        try:
            await self.sender.send(message)
        except MailRejected as exc:
            EMAIL_FAILURES.labels(email.kind, "rejected").inc()
            log.warning("email.rejected", kind=email.kind, error=str(exc))
            raise PermanentError(f"SMTP server refused the {email.kind} email: {exc}") from exc
        except MailError as exc:
            EMAIL_FAILURES.labels(email.kind, "retried").inc()
            log.warning("email.send_failed", kind=email.kind, error=str(exc))
            raise
        await repository.mark_sent(ctx.session, order_id=email.order_id, kind=email.kind)
        await ctx.emit(EmailSent(order_id=email.order_id, kind=email.kind, to=email.to))
        EMAILS_SENT.labels(email.kind).inc()
        log.info("email.sent", kind=email.kind, message_id=email.message_id)


def build_handlers(runtime: Runtime) -> dict[type[Event], Handler[Any]]:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    handlers = EmailHandlers(sender=runtime.resources[MAIL_SENDER], from_address=settings.smtp_from)
    return {
        OrderCreated: handlers.on_order_created,
        OrderConfirmed: handlers.on_order_confirmed,
        OrderCancelled: handlers.on_order_cancelled,
    }
