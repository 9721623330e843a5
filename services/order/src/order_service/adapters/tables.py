"""The order service's tables (SQLAlchemy Core). Migrations create them; this is
the one description queries are written against."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

MONEY = Numeric(12, 2)

products = Table(
    "products",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("price", MONEY, nullable=False),
    Column("currency", String(3), nullable=False, server_default="EUR"),
    CheckConstraint("price >= 0", name="products_price_not_negative"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("email", String(254), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    # Each side of the saga answers once; NULL = not yet heard from.
    Column("inventory_outcome", String(16)),
    Column("inventory_reason", Text),
    Column("payment_outcome", String(16)),
    Column("payment_reason", Text),
    Column("total", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Still PENDING at this time, the order is cancelled ("deadline exceeded").
    Column("deadline_at", DateTime(timezone=True), nullable=False),
    Index("orders_pending_by_deadline", "deadline_at", postgresql_where=text("status = 'PENDING'")),
    CheckConstraint("status IN ('PENDING', 'CONFIRMED', 'CANCELLED')", name="orders_status"),
    CheckConstraint("(status = 'CANCELLED') = (reason IS NOT NULL)", name="orders_reason"),
    CheckConstraint(
        "inventory_outcome IS NULL OR inventory_outcome IN ('RESERVED', 'REJECTED')",
        name="orders_inventory_outcome",
    ),
    CheckConstraint(
        "payment_outcome IS NULL OR payment_outcome IN ('AUTHORIZED', 'DECLINED')",
        name="orders_payment_outcome",
    ),
    CheckConstraint("total >= 0", name="orders_total_not_negative"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", UUID(as_uuid=True), ForeignKey("orders.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    # A snapshot of what was bought at what price: no foreign key to the catalogue.
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", MONEY, nullable=False),
    PrimaryKeyConstraint("order_id", "line_no"),
    CheckConstraint("quantity BETWEEN 1 AND 1000", name="order_lines_quantity"),
)

order_history = Table(
    "order_history",
    metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("order_id", UUID(as_uuid=True), ForeignKey("orders.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Index("order_history_by_order", "order_id", "seq"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("idempotency_keys_by_age", "created_at"),
    # The key is claimed first in the placing transaction (so a concurrent twin
    # waits before doing any work) and the order row follows: check the
    # reference at commit.
    ForeignKeyConstraint(["order_id"], ["orders.id"], deferrable=True, initially="DEFERRED"),
)
