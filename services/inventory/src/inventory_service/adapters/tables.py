"""The inventory's tables (SQLAlchemy Core). Migrations own the DDL; this mirrors it."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

stock = Table(
    "stock",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("available", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The last line of defence against overselling, whatever the code does.
    CheckConstraint("available >= 0", name="stock_available_not_negative"),
    CheckConstraint("reserved >= 0", name="stock_reserved_not_negative"),
)

reservations = Table(
    "reservations",
    metadata,
    # One reservation per order: the primary key is what makes a duplicate or
    # concurrent order.created / order.cancelled decide exactly once.
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("status", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "status IN ('RESERVED', 'REJECTED', 'RELEASED', 'COMMITTED', 'CANCELLED')",
        name="reservations_status_known",
    ),
)

reservation_lines = Table(
    "reservation_lines",
    metadata,
    Column(
        "order_id",
        UUID(as_uuid=True),
        ForeignKey("reservations.order_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("line_no", Integer, nullable=False),
    # No foreign key to stock: a rejected order may name SKUs we have never stocked.
    Column("sku", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    PrimaryKeyConstraint("order_id", "line_no"),
    CheckConstraint("quantity > 0", name="reservation_lines_quantity_positive"),
)
