"""The email service's use cases, each in a unit of work its caller opened."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

import structlog
from events import PermanentError
from service_kit.database import is_unavailable
from sqlalchemy.exc import DBAPIError

from email_service.adapters.mail import MailError, MailRejected, MailSender
from email_service.adapters.metrics import EMAIL_DUPLICATES, EMAIL_FAILURES, EMAILS_SENT
from email_service.domain.emails import Claim, OrderEmail, SentEmail
from email_service.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

# Pauses between attempts to record an accepted email (it must not be lost).
MARK_SENT_PAUSES = (0.1, 0.5, 2.0)


class Mailing(Protocol):
    """What sending needs besides the handler's unit of work."""

    @property
    def mail(self) -> MailSender: ...
    @property
    def from_address(self) -> str: ...
    @property
    def claim_lease(self) -> timedelta: ...

    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A short unit of work of its own, committed when the block ends."""


class EmailBeingSent(Exception):
    """Another delivery holds the claim on this email right now: try again later."""


async def send_once(uow: UnitOfWork, deps: Mailing, email: OrderEmail) -> None:
    """Send ``email`` unless this order already got one of its kind; announce it once.

    1. Claim ``(order_id, kind)`` in a short transaction of its own, committed
       before SMTP is spoken: a claim the SMTP server may have acted on is never
       lost with a rolled-back handler.
    2. Send. A refusal for good (5xx about this message) gives the claim up and
       dead-letters the event at once; a temporary failure gives the claim up and
       the event is retried.
    3. Mark it sent, again in its own transaction (tried a few times over a lost
       connection: the server has accepted the email, this must not be lost).
    4. In the handler's transaction, with the inbox claim: ``email.sent``, once.

    The window left: the server accepted the email and the process died before
    step 3 committed. After the claim's lease a retry sends it again, with the same
    ``Message-ID`` (``<order_id.kind@shop.example>``), so a receiver can drop it.
    """
    order_id, kind = email.order_id, email.kind
    async with deps.transaction() as claiming:
        claim = await claiming.emails.claim(
            order_id=order_id,
            kind=kind,
            recipient=email.to,
            message_id=email.message_id,
            lease=deps.claim_lease,
        )
    if claim is Claim.BUSY:
        raise EmailBeingSent(f"the {kind} email of {order_id} is being sent by another delivery")
    if claim is Claim.MINE:
        await _send(deps, email)
        await _mark_sent(deps, email)
    if await uow.emails.announce(order_id=order_id, kind=kind):
        uow.emit(email.sent())
        uow.after_commit(EMAILS_SENT.labels(kind).inc)
        log.info("email.sent", kind=kind, message_id=email.message_id)
    else:
        EMAIL_DUPLICATES.labels(kind).inc()
        log.info("email.already_sent", kind=kind)


async def _send(deps: Mailing, email: OrderEmail) -> None:
    message = email.to_message(sender=deps.from_address, date=datetime.now(UTC))
    try:
        await deps.mail.send(message)
    except MailError as exc:
        permanent = isinstance(exc, MailRejected)
        EMAIL_FAILURES.labels(email.kind, "rejected" if permanent else "retried").inc()
        log.warning("email.send_failed", kind=email.kind, permanent=permanent, error=str(exc))
        try:
            async with deps.transaction() as releasing:
                await releasing.emails.mark_failed(
                    order_id=email.order_id, kind=email.kind, reason=str(exc)
                )
        except Exception as release_error:  # the claim then lapses after its lease
            log.warning("email.release_failed", kind=email.kind, error=repr(release_error))
        if permanent:
            raise PermanentError(f"SMTP server refused the {email.kind} email: {exc}") from exc
        raise


async def _mark_sent(deps: Mailing, email: OrderEmail) -> None:
    for attempt, pause in enumerate(MARK_SENT_PAUSES, start=1):
        try:
            async with deps.transaction() as marking:
                await marking.emails.mark_sent(order_id=email.order_id, kind=email.kind)
            return
        except DBAPIError as exc:
            if attempt == len(MARK_SENT_PAUSES) or not is_unavailable(exc):
                raise
            log.warning("email.mark_sent_retried", kind=email.kind, error=type(exc).__name__)
            await asyncio.sleep(pause)


async def emails_of(uow: UnitOfWork, order_id: UUID) -> Sequence[SentEmail]:
    return await uow.emails.for_order(order_id)
