"""The payment service's tables (the migrations create them; this is their shape)."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    MetaData,
    Numeric,
    String,
    Table,
    func,
)
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    # One payment per order: the primary key is what serializes concurrent
    # order.created / order.cancelled handlers for the same order.
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("amount", Numeric(12, 2)),
    Column("currency", String(3)),
    Column("reason", String(500)),
    Column("authorization_id", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "status IN ('PENDING', 'AUTHORIZED', 'DECLINED', 'VOIDED', 'CANCELLED')",
        name="payments_status_known",
    ),
    # Only the tombstone lacks an amount: it records a cancellation, not a charge.
    CheckConstraint(
        "status = 'CANCELLED' OR (amount IS NOT NULL AND currency IS NOT NULL)",
        name="payments_charge_present",
    ),
    CheckConstraint(
        "status NOT IN ('AUTHORIZED', 'VOIDED') OR authorization_id IS NOT NULL",
        name="payments_authorization_present",
    ),
    CheckConstraint("status <> 'DECLINED' OR reason IS NOT NULL", name="payments_reason_present"),
)
