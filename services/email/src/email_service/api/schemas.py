"""What ``GET /emails`` answers."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from shop_contract import EmailKind

from email_service.domain.emails import SentEmail


class EmailPublic(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: UUID
    kind: EmailKind
    to: str = Field(max_length=320, description="The recipient's address.")
    sent_at: datetime = Field(description="When the SMTP server accepted the email.")

    @classmethod
    def of(cls, email: SentEmail) -> EmailPublic:
        return cls(
            order_id=email.order_id, kind=email.kind, to=email.recipient, sent_at=email.sent_at
        )
