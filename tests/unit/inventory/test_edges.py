"""The service's edges, checked without I/O: handler map and request schema."""

from typing import cast

import pytest
from events import SHOP_SERVICES
from inventory_service.api.schemas import StockUpdate
from inventory_service.handlers import build_handlers
from pydantic import ValidationError
from service_kit import Runtime


def test_handlers_cover_exactly_the_keys_inventory_consumes() -> None:
    handlers = build_handlers(cast(Runtime, None))  # the handlers need nothing from it

    assert {model.TYPE for model in handlers} == SHOP_SERVICES["inventory"].consumes


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
