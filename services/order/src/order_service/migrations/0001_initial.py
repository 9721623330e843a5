"""Orders, their lines and history, idempotency keys, the catalogue.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(12, 2)


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="EUR"),
        sa.CheckConstraint("price >= 0", name="products_price_not_negative"),
    )
    op.create_table(
        "orders",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("inventory_outcome", sa.String(16)),
        sa.Column("inventory_reason", sa.Text),
        sa.Column("payment_outcome", sa.String(16)),
        sa.Column("payment_reason", sa.Text),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('PENDING', 'CONFIRMED', 'CANCELLED')", name="orders_status"),
        sa.CheckConstraint("(status = 'CANCELLED') = (reason IS NOT NULL)", name="orders_reason"),
        sa.CheckConstraint(
            "inventory_outcome IS NULL OR inventory_outcome IN ('RESERVED', 'REJECTED')",
            name="orders_inventory_outcome",
        ),
        sa.CheckConstraint(
            "payment_outcome IS NULL OR payment_outcome IN ('AUTHORIZED', 'DECLINED')",
            name="orders_payment_outcome",
        ),
        sa.CheckConstraint("total >= 0", name="orders_total_not_negative"),
    )
    op.create_table(
        "order_lines",
        sa.Column("order_id", UUID(as_uuid=True), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", MONEY, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "line_no"),
        sa.CheckConstraint("quantity BETWEEN 1 AND 1000", name="order_lines_quantity"),
    )
    op.create_table(
        "order_history",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("order_id", UUID(as_uuid=True), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
    )
    op.create_index("order_history_by_order", "order_history", ["order_id", "seq"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("order_id", UUID(as_uuid=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], deferrable=True, initially="DEFERRED"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("order_history_by_order", table_name="order_history")
    op.drop_table("order_history")
    op.drop_table("order_lines")
    op.drop_table("orders")
    op.drop_table("products")
