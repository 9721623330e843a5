"""Seed the catalogue (the inventory service seeds matching stock).

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-01
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy: a migration must not change meaning when application code does.
PRODUCTS = [
    ("KEYBOARD-01", "Mechanical keyboard", Decimal("89.00")),
    ("MOUSE-01", "Wireless mouse", Decimal("29.50")),
    ("MONITOR-27", "27-inch monitor", Decimal("249.00")),
    ("USB-C-HUB", "USB-C hub", Decimal("39.90")),
    ("HEADSET-01", "Headset", Decimal("59.00")),
    ("WEBCAM-01", "HD webcam", Decimal("45.00")),
]

products = sa.table(
    "products",
    sa.column("sku", sa.String),
    sa.column("name", sa.Text),
    sa.column("price", sa.Numeric(12, 2)),
    sa.column("currency", sa.String),
)


def upgrade() -> None:
    op.bulk_insert(
        products,
        [
            {"sku": sku, "name": name, "price": price, "currency": "EUR"}
            for sku, name, price in PRODUCTS
        ],
    )


def downgrade() -> None:
    op.execute(products.delete().where(products.c.sku.in_([sku for sku, _, _ in PRODUCTS])))
