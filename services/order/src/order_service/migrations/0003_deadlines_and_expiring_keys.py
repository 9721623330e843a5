"""orders.deadline_at (a PENDING order past it is cancelled); idempotency keys expire.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Orders placed before this revision get the default deadline (600 s after they
were placed): a PENDING one among them is cancelled at the next sweep.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("deadline_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE orders SET deadline_at = created_at + interval '600 seconds'")
    op.alter_column("orders", "deadline_at", nullable=False)
    # The sweeper reads only PENDING orders by deadline: a small partial index.
    op.create_index(
        "orders_pending_by_deadline",
        "orders",
        ["deadline_at"],
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.create_index("idempotency_keys_by_age", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("idempotency_keys_by_age", table_name="idempotency_keys")
    op.drop_index("orders_pending_by_deadline", table_name="orders")
    op.drop_column("orders", "deadline_at")
