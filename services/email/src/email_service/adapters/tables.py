"""The email service's own tables (outbox and inbox come from ``events``)."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

# One row per email sent. The primary key is what makes "exactly once per order
# and kind" hold: a second attempt finds the row and sends nothing.
emails = Table(
    "emails",
    metadata,
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("message_id", Text, nullable=False),
    PrimaryKeyConstraint("order_id", "kind", name="emails_pkey"),
    CheckConstraint("kind IN ('received', 'confirmed', 'cancelled')", name="emails_kind"),
    Index("emails_sent_at", "sent_at"),
)
