"""Seed 100 sellable units of each SKU in the order service's catalogue.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATALOGUE_SKUS = ("KEYBOARD-01", "MOUSE-01", "MONITOR-27", "USB-C-HUB", "HEADSET-01", "WEBCAM-01")
INITIAL_AVAILABLE = 100


def upgrade() -> None:
    # ON CONFLICT: a SKU restocked by hand before this ran keeps its quantity.
    op.get_bind().execute(
        sa.text(
            "INSERT INTO stock (sku, available, reserved) VALUES (:sku, :available, 0) "
            "ON CONFLICT (sku) DO NOTHING"
        ),
        [{"sku": sku, "available": INITIAL_AVAILABLE} for sku in CATALOGUE_SKUS],
    )


def downgrade() -> None:
    op.get_bind().execute(
        sa.text("DELETE FROM stock WHERE sku = ANY(:skus)"), {"skus": list(CATALOGUE_SKUS)}
    )
