"""Stock levels and the all-or-nothing reservation decision.

``available`` is what can still be sold; ``reserved`` is held for orders that are
not settled yet. Reserving moves quantity from the first to the second, releasing
moves it back, committing removes it (the goods have been sold).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

INSUFFICIENT_STOCK = "insufficient stock"


@dataclass(frozen=True, slots=True)
class Line:
    """One line of an order: ``quantity`` units of ``sku``."""

    sku: str
    quantity: int

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise ValueError(f"quantity of {self.sku} must be at least 1, got {self.quantity}")


@dataclass(frozen=True, slots=True)
class StockLevel:
    sku: str
    available: int
    reserved: int = 0

    def __post_init__(self) -> None:
        if self.available < 0 or self.reserved < 0:
            raise ValueError(f"stock of {self.sku} cannot go negative: {self}")

    def can_reserve(self, quantity: int) -> bool:
        return quantity <= self.available

    def reserve(self, quantity: int) -> StockLevel:
        return replace(self, available=self.available - quantity, reserved=self.reserved + quantity)

    def release(self, quantity: int) -> StockLevel:
        return replace(self, available=self.available + quantity, reserved=self.reserved - quantity)

    def commit(self, quantity: int) -> StockLevel:
        return replace(self, reserved=self.reserved - quantity)


@dataclass(frozen=True, slots=True)
class Reserved:
    """Every line could be served; ``stock`` holds the new levels to store."""

    stock: tuple[StockLevel, ...]


@dataclass(frozen=True, slots=True)
class Rejected:
    """At least one line could not be served; nothing changes."""

    missing_skus: tuple[str, ...]
    reason: str = INSUFFICIENT_STOCK


def demand(lines: Iterable[Line]) -> dict[str, int]:
    """Total quantity per SKU, in sorted SKU order (an order may repeat a SKU)."""
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.sku] = totals.get(line.sku, 0) + line.quantity
    return dict(sorted(totals.items()))


def reserve_stock(lines: Iterable[Line], stock: Mapping[str, StockLevel]) -> Reserved | Rejected:
    """Reserve every line or none: a SKU that is unknown or short rejects the order."""
    wanted = demand(lines)
    missing = tuple(sku for sku, quantity in wanted.items() if not _has(stock.get(sku), quantity))
    if missing:
        return Rejected(missing_skus=missing)
    return Reserved(stock=tuple(stock[sku].reserve(quantity) for sku, quantity in wanted.items()))


def release_stock(lines: Iterable[Line], stock: Mapping[str, StockLevel]) -> tuple[StockLevel, ...]:
    """Give reserved quantities back to what can be sold."""
    return tuple(stock[sku].release(quantity) for sku, quantity in demand(lines).items())


def commit_stock(lines: Iterable[Line], stock: Mapping[str, StockLevel]) -> tuple[StockLevel, ...]:
    """The order is confirmed: its reserved quantities leave the stock for good."""
    return tuple(stock[sku].commit(quantity) for sku, quantity in demand(lines).items())


def _has(level: StockLevel | None, quantity: int) -> bool:
    return level is not None and level.can_reserve(quantity)
