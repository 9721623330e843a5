"""The service's HTTP edge, checked without I/O: the request schema."""

import pytest
from inventory_service.api.schemas import StockUpdate
from pydantic import ValidationError


@pytest.mark.parametrize("available", [0, 1, 1_000_000])
def test_restock_accepts_quantities_in_range(available: int) -> None:
    assert StockUpdate.model_validate({"available": available}).available == available


@pytest.mark.parametrize("available", [-1, 1_000_001, "5", 5.0, True, None])
def test_restock_rejects_anything_but_an_int_in_range(available: object) -> None:
    with pytest.raises(ValidationError, match="available"):
        StockUpdate.model_validate({"available": available})


def test_restock_forbids_extra_fields() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        StockUpdate.model_validate({"available": 1, "reserved": 5})
