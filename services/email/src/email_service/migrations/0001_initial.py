"""emails.

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
        "emails",
        sa.Column("order_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column(
            "sent_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "kind", name="emails_pkey"),
        sa.CheckConstraint("kind IN ('received', 'confirmed', 'cancelled')", name="emails_kind"),
    )
    op.create_index("emails_sent_at", "emails", ["sent_at"])


def downgrade() -> None:
    op.drop_index("emails_sent_at", table_name="emails")
    op.drop_table("emails")
