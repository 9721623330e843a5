"""emails: claimed, then sent, then announced: a claim commits before SMTP is spoken.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Rows that exist were sent and announced in one transaction, so they are 'sent'
and announced.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("emails", sa.Column("status", sa.Text(), nullable=False, server_default="sent"))
    op.add_column("emails", sa.Column("claimed_at", sa.DateTime(timezone=True)))
    op.add_column("emails", sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
    op.add_column(
        "emails", sa.Column("announced", sa.Boolean(), nullable=False, server_default="true")
    )
    op.add_column("emails", sa.Column("failure", sa.Text()))
    op.alter_column("emails", "sent_at", nullable=True, server_default=None)
    op.create_check_constraint("emails_status", "emails", "status IN ('claimed', 'sent', 'failed')")
    op.create_check_constraint(
        "emails_sent_has_time", "emails", "(status = 'sent') = (sent_at IS NOT NULL)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM emails WHERE status <> 'sent'")
    op.drop_constraint("emails_sent_has_time", "emails")
    op.drop_constraint("emails_status", "emails")
    op.alter_column("emails", "sent_at", nullable=False, server_default=sa.func.now())
    for column in ("failure", "announced", "attempts", "claimed_at", "status"):
        op.drop_column("emails", column)
