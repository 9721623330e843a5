"""The all-or-nothing reservation decision and the stock arithmetic."""

import pytest
from inventory_service.domain import (
    INSUFFICIENT_STOCK,
    Line,
    Rejected,
    Reserved,
    StockLevel,
    commit_stock,
    demand,
    release_stock,
    reserve_stock,
)


def levels(**available: int) -> dict[str, StockLevel]:
    return {sku: StockLevel(sku, quantity) for sku, quantity in available.items()}


def test_every_line_available_reserves_them_all() -> None:
    decision = reserve_stock([Line("B", 2), Line("A", 3)], levels(A=3, B=5, C=1))

    assert decision == Reserved(stock=(StockLevel("A", 0, 3), StockLevel("B", 3, 2)))


def test_one_short_line_rejects_the_order_and_names_it() -> None:
    decision = reserve_stock([Line("A", 1), Line("B", 6)], levels(A=10, B=5))

    assert decision == Rejected(missing_skus=("B",), reason=INSUFFICIENT_STOCK)


def test_unknown_skus_are_missing_too_and_listed_sorted() -> None:
    decision = reserve_stock([Line("Z", 1), Line("A", 1), Line("M", 9)], levels(A=1, M=2))

    assert decision == Rejected(missing_skus=("M", "Z"))


def test_repeated_sku_is_checked_against_its_total() -> None:
    lines = [Line("A", 3), Line("A", 3)]

    assert reserve_stock(lines, levels(A=5)) == Rejected(missing_skus=("A",))
    assert reserve_stock(lines, levels(A=6)) == Reserved(stock=(StockLevel("A", 0, 6),))


def test_exact_quantity_can_be_reserved() -> None:
    assert reserve_stock([Line("A", 4)], levels(A=4)) == Reserved(stock=(StockLevel("A", 0, 4),))


def test_reserved_stock_is_not_available_again() -> None:
    reserved = StockLevel("A", 5, 0).reserve(5)

    assert not reserved.can_reserve(1)
    assert reserve_stock([Line("A", 1)], {"A": reserved}) == Rejected(missing_skus=("A",))


def test_release_gives_back_what_was_reserved() -> None:
    stock = {"A": StockLevel("A", 1, 4), "B": StockLevel("B", 0, 2)}

    released = release_stock([Line("A", 3), Line("B", 2), Line("A", 1)], stock)

    assert released == (StockLevel("A", 5, 0), StockLevel("B", 2, 0))


def test_commit_removes_the_reserved_units_for_good() -> None:
    stock = {"A": StockLevel("A", 7, 4)}

    assert commit_stock([Line("A", 4)], stock) == (StockLevel("A", 7, 0),)


def test_reserve_then_release_restores_the_level() -> None:
    start = StockLevel("A", 10, 2)

    assert start.reserve(6).release(6) == start


def test_stock_can_never_go_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        StockLevel("A", 1).reserve(2)
    with pytest.raises(ValueError, match="negative"):
        StockLevel("A", 1, 1).commit(2)
    with pytest.raises(ValueError, match="negative"):
        StockLevel("A", 1, 0).release(1)


def test_a_line_needs_a_positive_quantity() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Line("A", 0)


def test_demand_sums_per_sku_in_sorted_order() -> None:
    totals = demand([Line("b", 1), Line("A", 2), Line("b", 4)])

    assert list(totals.items()) == [("A", 2), ("b", 5)]
