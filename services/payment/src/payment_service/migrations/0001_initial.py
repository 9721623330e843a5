"""payments table

Revision ID: 0001
Revises:
Create Date: 2024-11-22
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
        "payments",
        sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("currency", sa.String(3)),
        sa.Column("reason", sa.String(500)),
        sa.Column("authorization_id", sa.String(128)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "status IN ('PENDING', 'AUTHORIZED', 'DECLINED', 'VOIDED', 'CANCELLED')",
            name="payments_status_known",
        ),
        sa.CheckConstraint(
            "status = 'CANCELLED' OR (amount IS NOT NULL AND currency IS NOT NULL)",
            name="payments_charge_present",
        ),
        sa.CheckConstraint(
            "status NOT IN ('AUTHORIZED', 'VOIDED') OR authorization_id IS NOT NULL",
            name="payments_authorization_present",
        ),
        sa.CheckConstraint(
            "status <> 'DECLINED' OR reason IS NOT NULL", name="payments_reason_present"
        ),
    )


def downgrade() -> None:
    op.drop_table("payments")
