"""The email service's own tables (outbox and inbox come from ``events``)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

# One row per email. The primary key is what makes "exactly once per order and
# kind" hold: a claim is committed before SMTP is spoken, so a second attempt
# finds the row and sends nothing (see service_layer.send_once).
emails = Table(
    "emails",
    metadata,
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="sent"),  # claimed | sent | failed
    Column("claimed_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("sent_at", DateTime(timezone=True)),  # when the SMTP server accepted it
    Column("announced", Boolean, nullable=False, server_default="true"),  # email.sent emitted
    Column("failure", Text),
    PrimaryKeyConstraint("order_id", "kind", name="emails_pkey"),
    CheckConstraint("kind IN ('received', 'confirmed', 'cancelled')", name="emails_kind"),
    CheckConstraint("status IN ('claimed', 'sent', 'failed')", name="emails_status"),
    CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name="emails_sent_has_time"),
    Index("emails_sent_at", "sent_at"),
)
