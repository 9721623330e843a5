"""One email per order and kind: which one an event calls for, and how it is built.

An email's identity is ``(order_id, kind)``. Its ``Message-ID`` is derived from
that identity alone, so the same email sent twice carries the same id and a
receiving system can recognise the duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from enum import StrEnum
from uuid import UUID

from shop_contract import EmailKind, EmailSent, OrderCancelled, OrderConfirmed, OrderCreated

from email_service.domain import templates
from email_service.domain.templates import Rendered

MESSAGE_ID_DOMAIN = "shop.example"
ORDER_ID_HEADER = "X-Order-Id"
KIND_HEADER = "X-Email-Kind"


def message_id_for(order_id: UUID, kind: EmailKind) -> str:
    return f"<{order_id}.{kind}@{MESSAGE_ID_DOMAIN}>"


class Claim(StrEnum):
    """What claiming an email to send found."""

    MINE = "mine"  # ours to send now
    SENT = "sent"  # it was sent already
    BUSY = "busy"  # someone else is sending it right now


@dataclass(frozen=True, slots=True)
class SentEmail:
    """An email as ``GET /emails`` shows it."""

    order_id: UUID
    kind: EmailKind
    recipient: str
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class OrderEmail:
    order_id: UUID
    kind: EmailKind
    to: str
    content: Rendered

    @property
    def message_id(self) -> str:
        return message_id_for(self.order_id, self.kind)

    def sent(self) -> EmailSent:
        """The event announcing that the SMTP server took this email."""
        return EmailSent(order_id=self.order_id, kind=self.kind, to=self.to)

    def to_message(self, *, sender: str, date: datetime) -> EmailMessage:
        """A multipart/alternative message: plain text first, HTML preferred."""
        message = EmailMessage()
        message["Subject"] = self.content.subject
        message["From"] = sender
        message["To"] = self.to
        message["Date"] = format_datetime(date)
        message["Message-ID"] = self.message_id
        message[ORDER_ID_HEADER] = str(self.order_id)
        message[KIND_HEADER] = self.kind
        message.set_content(self.content.text)
        message.add_alternative(self.content.html, subtype="html")
        return message


def order_received_email(event: OrderCreated) -> OrderEmail:
    return _about_the_lines(event, "received", templates.received)


def order_confirmed_email(event: OrderConfirmed) -> OrderEmail:
    return _about_the_lines(event, "confirmed", templates.confirmed)


def _about_the_lines(
    event: OrderCreated | OrderConfirmed, kind: EmailKind, render: Callable[..., Rendered]
) -> OrderEmail:
    return OrderEmail(
        order_id=event.order_id,
        kind=kind,
        to=event.email,
        content=render(
            order_id=event.order_id,
            customer_id=event.customer_id,
            to=event.email,
            lines=event.items,
            total=event.total,
            currency=event.currency,
        ),
    )


def order_cancelled_email(event: OrderCancelled) -> OrderEmail:
    return OrderEmail(
        order_id=event.order_id,
        kind="cancelled",
        to=event.email,
        content=templates.cancelled(
            order_id=event.order_id,
            customer_id=event.customer_id,
            to=event.email,
            reason=event.reason,
        ),
    )
