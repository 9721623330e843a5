"""events: outbox, inbox and the NOTIFY trigger.

Revision ID: e0001
Revises:
Create Date: 2026-12-01

Databases created before the tables moved into this branch already have them
(their first service migration made them), hence "if not exists" throughout.
"""

from alembic import op
from events._tables import create_messaging_tables

revision = "e0001"
down_revision = None
branch_labels = ("events",)
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op.get_bind())


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS outbox, inbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify() CASCADE")
