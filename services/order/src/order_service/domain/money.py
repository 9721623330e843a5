"""Money is a ``Decimal`` in euro cents precision, never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CURRENCY = "EUR"
CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)
