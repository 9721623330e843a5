"""The email service's use cases, each in a unit of work its caller opened."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import structlog
from events import PermanentError

from email_service.adapters.mail import MailError, MailRejected, MailSender
from email_service.adapters.metrics import EMAIL_DUPLICATES, EMAIL_FAILURES, EMAILS_SENT
from email_service.domain.emails import OrderEmail, SentEmail
from email_service.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)


async def send_once(uow: UnitOfWork, mail: MailSender, email: OrderEmail, *, sender: str) -> None:
    """Send ``email`` unless this order already got one of its kind.

    Claim ``(order_id, kind)`` in ``emails`` (INSERT ... ON CONFLICT DO NOTHING);
    an existing row means it was sent, so nothing happens. Otherwise send over
    SMTP, then stage ``email.sent``. If SMTP fails the exception rolls the
    transaction back, the claim disappears with it, and the consumer retries.

    The one window left: the SMTP server accepted the email but the commit then
    failed (database gone, process killed). The claim is lost, so the retry
    sends the email again. It carries the same deterministic ``Message-ID``
    (``<order_id.kind@shop.example>``), so a receiving system can drop it.
    """
    claimed = await uow.emails.claim(
        order_id=email.order_id, kind=email.kind, recipient=email.to, message_id=email.message_id
    )
    if not claimed:
        EMAIL_DUPLICATES.labels(email.kind).inc()
        log.info("email.already_sent", kind=email.kind)
        return
    message = email.to_message(sender=sender, date=datetime.now(UTC))
    try:
        await mail.send(message)
    except MailRejected as exc:
        EMAIL_FAILURES.labels(email.kind, "rejected").inc()
        log.warning("email.rejected", kind=email.kind, error=str(exc))
        raise PermanentError(f"SMTP server refused the {email.kind} email: {exc}") from exc
    except MailError as exc:
        EMAIL_FAILURES.labels(email.kind, "retried").inc()
        log.warning("email.send_failed", kind=email.kind, error=str(exc))
        raise
    await uow.emails.mark_sent(order_id=email.order_id, kind=email.kind)
    uow.emit(email.sent())
    uow.after_commit(EMAILS_SENT.labels(email.kind).inc)
    log.info("email.sent", kind=email.kind, message_id=email.message_id)


async def emails_of(uow: UnitOfWork, order_id: UUID) -> Sequence[SentEmail]:
    return await uow.emails.for_order(order_id)
