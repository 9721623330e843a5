"""Stock, reservations and their lines.

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


def upgrade() -> None:
    op.create_table(
        "stock",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("available", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("available >= 0", name="stock_available_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="stock_reserved_not_negative"),
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "status IN ('RESERVED', 'REJECTED', 'RELEASED', 'COMMITTED', 'CANCELLED')",
            name="reservations_status_known",
        ),
    )
    op.create_table(
        "reservation_lines",
        sa.Column(
            "order_id",
            UUID(as_uuid=True),
            sa.ForeignKey("reservations.order_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("sku", sa.Text, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "line_no"),
        sa.CheckConstraint("quantity > 0", name="reservation_lines_quantity_positive"),
    )


def downgrade() -> None:
    op.drop_table("reservation_lines")
    op.drop_table("reservations")
    op.drop_table("stock")
