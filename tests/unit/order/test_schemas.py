"""The HTTP request schema refuses bad input, naming the field (pure, no app)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from order_service.api.schemas import MAX_LINES, OrderCreate, ProductPublic
from order_service.domain.catalogue import Product
from pydantic import ValidationError


def body(**changes: Any) -> dict[str, Any]:
    return {
        "customer_id": "cust-1",
        "email": "buyer@example.com",
        "items": [{"sku": "KEYBOARD-01", "quantity": 1}],
        "payment_token": "tok_visa",
    } | changes


def errors(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        OrderCreate.model_validate(data)
    return [(tuple(e["loc"]), e["type"]) for e in caught.value.errors()]


def test_a_good_body_is_accepted() -> None:
    order = OrderCreate.model_validate(body())
    assert order.requested_lines()[0].sku == "KEYBOARD-01"


@pytest.mark.parametrize(
    ("changes", "loc", "kind"),
    [
        ({"customer_id": ""}, ("customer_id",), "string_too_short"),
        ({"customer_id": "c" * 65}, ("customer_id",), "string_too_long"),
        ({"customer_id": 7}, ("customer_id",), "string_type"),
        ({"email": "not-an-email"}, ("email",), "value_error"),
        ({"email": "a" * 245 + "@example.com"}, ("email",), "value_error"),
        ({"items": []}, ("items",), "too_short"),
        ({"items": [{"sku": "A", "quantity": 1}] * (MAX_LINES + 1)}, ("items",), "order_oversized"),
        ({"items": [{"sku": "", "quantity": 1}]}, ("items", 0, "sku"), "string_too_short"),
        ({"items": [{"sku": "S" * 65, "quantity": 1}]}, ("items", 0, "sku"), "string_too_long"),
        ({"items": [{"sku": "A", "quantity": 0}]}, ("items", 0, "quantity"), "greater_than_equal"),
        ({"items": [{"sku": "A", "quantity": 1001}]}, ("items", 0, "quantity"), "less_than_equal"),
        ({"items": [{"sku": "A", "quantity": True}]}, ("items", 0, "quantity"), "int_type"),
        ({"items": [{"sku": "A", "quantity": 1.0}]}, ("items", 0, "quantity"), "int_type"),
        ({"items": [{"sku": "A", "quantity": "2"}]}, ("items", 0, "quantity"), "int_type"),
        (
            {"items": [{"sku": "A", "quantity": 1, "price": "0.01"}]},
            ("items", 0, "price"),
            "extra_forbidden",
        ),
        ({"payment_token": ""}, ("payment_token",), "string_too_short"),
        ({"payment_token": "t" * 129}, ("payment_token",), "string_too_long"),
        ({"total": "0.01"}, ("total",), "extra_forbidden"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], loc: tuple[Any, ...], kind: str) -> None:
    assert (loc, kind) in errors(body(**changes))


@pytest.mark.parametrize("field", ["customer_id", "email", "items", "payment_token"])
def test_every_field_is_required(field: str) -> None:
    data = body()
    del data[field]
    assert ((field,), "missing") in errors(data)


def test_exactly_max_lines_is_fine() -> None:
    items = [{"sku": f"SKU-{i}", "quantity": 1000} for i in range(MAX_LINES)]
    assert len(OrderCreate.model_validate(body(items=items)).items) == MAX_LINES


def test_prices_leave_as_two_place_decimal_strings() -> None:
    product = ProductPublic.of(Product("MOUSE-01", "Wireless mouse", Decimal("29.5")))
    assert product.model_dump(mode="json") == {
        "sku": "MOUSE-01",
        "name": "Wireless mouse",
        "price": "29.50",
    }
