"""Pricing an order's lines from the catalogue."""

from __future__ import annotations

from decimal import Decimal

import pytest
from order_service.domain.catalogue import (
    LineProblem,
    OrderLine,
    RequestedLine,
    UnorderableLines,
    price_lines,
)

PRICES = {"KEYBOARD-01": Decimal("89.00"), "MOUSE-01": Decimal("29.50")}


def test_lines_get_catalogue_prices_in_the_order_sent() -> None:
    lines = price_lines([RequestedLine("MOUSE-01", 3), RequestedLine("KEYBOARD-01", 1)], PRICES)
    assert lines == (
        OrderLine("MOUSE-01", 3, Decimal("29.50")),
        OrderLine("KEYBOARD-01", 1, Decimal("89.00")),
    )
    assert lines[0].amount == Decimal("88.50")


def test_every_unknown_sku_is_named_by_its_line() -> None:
    with pytest.raises(UnorderableLines) as caught:
        price_lines(
            [RequestedLine("KEYBOARD-01", 1), RequestedLine("NOPE", 1), RequestedLine("GONE", 2)],
            PRICES,
        )
    assert caught.value.problems == (
        LineProblem(1, "NOPE", "unknown_sku", "unknown SKU 'NOPE'"),
        LineProblem(2, "GONE", "unknown_sku", "unknown SKU 'GONE'"),
    )


def test_a_repeated_sku_is_rejected_naming_both_lines() -> None:
    with pytest.raises(UnorderableLines) as caught:
        price_lines([RequestedLine("MOUSE-01", 1), RequestedLine("MOUSE-01", 2)], PRICES)
    (problem,) = caught.value.problems
    assert (problem.index, problem.kind) == (1, "duplicate_sku")
    assert "already on line 0" in problem.message
