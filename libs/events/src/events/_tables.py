"""The outbox and inbox tables every service database carries.

The library's own Alembic branch (``events/migrations``) creates them. A
statement-level trigger NOTIFYs the relay on insert: the notification is
delivered at commit, costs the writer no extra round trip, and is never sent
for a rolled-back transaction.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

OUTBOX_CHANNEL = "events_outbox"

metadata = MetaData()

outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("routing_key", Text, nullable=False),
    Column("correlation_id", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    # The relay only ever reads unsent rows; partial indexes keep that cheap
    # however many sent rows wait for the retention cleanup.
    Index("outbox_pending", "seq", postgresql_where=text("sent_at IS NULL")),
    Index(
        "outbox_pending_by_correlation",
        "correlation_id",
        "seq",
        postgresql_where=text("sent_at IS NULL"),
    ),
    Index("outbox_sent_at", "sent_at", postgresql_where=text("sent_at IS NOT NULL")),
)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", Text, nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("correlation_id", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("consumer", "event_id"),
    Index("inbox_received_at", "received_at"),
)

_NOTIFY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{OUTBOX_CHANNEL}', '');
    RETURN NULL;
END $$;
"""
_NOTIFY_TRIGGER = """
CREATE OR REPLACE TRIGGER outbox_notify AFTER INSERT ON outbox
FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
"""


def create_messaging_tables(connection: Connection) -> None:
    """Create outbox, inbox and the notify trigger, unless they exist."""
    metadata.create_all(connection, checkfirst=True)
    connection.exec_driver_sql(_NOTIFY_FUNCTION)
    connection.exec_driver_sql(_NOTIFY_TRIGGER)
