"""Pricing an order from the catalogue: every line gets the catalogue's unit price.

Duplicate SKUs in one order are *rejected*, not merged: merging would silently
change what the customer sent (and could exceed the per-line quantity cap), while
a clear error names the line to fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class RequestedLine:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class LineProblem:
    """Why line ``index`` (0-based, as sent) cannot be ordered."""

    index: int
    sku: str
    kind: str  # "unknown_sku" | "duplicate_sku"
    message: str


class UnorderableLines(Exception):
    def __init__(self, problems: Sequence[LineProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = tuple(problems)


def price_lines(
    requested: Sequence[RequestedLine], prices: Mapping[str, Decimal]
) -> tuple[OrderLine, ...]:
    """Price each line at its catalogue price; raise naming every bad line."""
    problems: list[LineProblem] = []
    first_seen: dict[str, int] = {}
    for index, line in enumerate(requested):
        if line.sku in first_seen:
            problems.append(
                LineProblem(
                    index,
                    line.sku,
                    "duplicate_sku",
                    f"SKU {line.sku!r} is already on line {first_seen[line.sku]};"
                    " put the whole quantity on one line",
                )
            )
            continue
        first_seen[line.sku] = index
        if line.sku not in prices:
            problems.append(
                LineProblem(index, line.sku, "unknown_sku", f"unknown SKU {line.sku!r}")
            )
    if problems:
        raise UnorderableLines(problems)
    return tuple(OrderLine(line.sku, line.quantity, prices[line.sku]) for line in requested)
