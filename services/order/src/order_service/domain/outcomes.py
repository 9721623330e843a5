"""What the two other sides of the saga answer about an order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Side(StrEnum):
    INVENTORY = "inventory"
    PAYMENT = "payment"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One side's answer: positive (reserved / authorized) or not, and why not."""

    side: Side
    positive: bool
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.positive == (self.reason is not None):
            raise ValueError("a negative outcome needs a reason, a positive one has none")


def stock_reserved() -> Outcome:
    return Outcome(Side.INVENTORY, positive=True)


def stock_rejected(missing_skus: Sequence[str], reason: str = "") -> Outcome:
    if missing_skus:
        why = f"out of stock: {', '.join(missing_skus)}"
    else:
        # Inventory may refuse for another reason; still say something useful.
        why = f"stock not reserved: {reason or 'no reason given'}"
    return Outcome(Side.INVENTORY, positive=False, reason=why)


def payment_authorized() -> Outcome:
    return Outcome(Side.PAYMENT, positive=True)


def payment_declined(reason: str) -> Outcome:
    return Outcome(Side.PAYMENT, positive=False, reason=f"payment declined: {reason}")
