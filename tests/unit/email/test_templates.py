"""The words of each email, and the escaping of everything users typed."""

import uuid
from decimal import Decimal

import pytest
from email_service.domain import templates
from shop_contract import OrderLine
from shop_contract.testing import LINES

SCRIPT = "<script>alert('x')</script>"

ORDER_ID = uuid.UUID("1234abcd-0000-4000-8000-000000000000")
ESCAPED_SCRIPT = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"


def received(**overrides: object) -> templates.Rendered:
    values: dict[str, object] = {
        "order_id": ORDER_ID,
        "customer_id": "c-42",
        "to": "buyer@example.com",
        "lines": LINES,
        "total": Decimal("24.98"),
        "currency": "EUR",
    } | overrides
    return templates.received(**values)  # type: ignore[arg-type]


def test_subjects_quote_the_short_order_id() -> None:
    assert received().subject == "We received your order 1234abcd…"
    confirmed = templates.confirmed(
        order_id=ORDER_ID,
        customer_id="c",
        to="a@example.com",
        lines=LINES,
        total=Decimal("24.98"),
        currency="EUR",
    )
    assert confirmed.subject == "Your order 1234abcd… is confirmed"
    cancelled = templates.cancelled(
        order_id=ORDER_ID, customer_id="c", to="a@example.com", reason="out of stock"
    )
    assert cancelled.subject == "Your order 1234abcd… was cancelled"


def test_received_lists_every_line_and_the_total_in_both_parts() -> None:
    rendered = received()
    assert "2 x SKU-1 at 9.99 EUR = 19.98 EUR" in rendered.text
    assert "1 x SKU-2 at 5.00 EUR = 5.00 EUR" in rendered.text
    assert "Total: 24.98 EUR" in rendered.text
    assert str(ORDER_ID) in rendered.text
    assert "<td>SKU-1</td><td>2</td><td>9.99 EUR</td><td>19.98 EUR</td>" in rendered.html
    assert "<strong>24.98 EUR</strong>" in rendered.html
    assert rendered.html.startswith("<!DOCTYPE html>")


def test_cancelled_states_the_reason() -> None:
    rendered = templates.cancelled(
        order_id=ORDER_ID, customer_id="c-42", to="a@example.com", reason="out of stock: SKU-9"
    )
    assert "Reason: out of stock: SKU-9" in rendered.text
    assert "<p>Reason: out of stock: SKU-9</p>" in rendered.html


@pytest.mark.parametrize("field", ["customer_id", "to", "sku", "currency"])
def test_user_input_is_escaped_in_the_html_of_the_received_email(field: str) -> None:
    if field == "sku":
        rendered = received(lines=(OrderLine(sku=SCRIPT, quantity=1, unit_price=Decimal(1)),))
    else:
        rendered = received(**{field: SCRIPT})
    assert "<script>" not in rendered.html
    assert ESCAPED_SCRIPT in rendered.html
    # The plain-text part is not markup: it shows what the user typed, as typed.
    assert SCRIPT in rendered.text


@pytest.mark.parametrize("field", ["customer_id", "to", "reason"])
def test_user_input_is_escaped_in_the_html_of_the_cancelled_email(field: str) -> None:
    values = {"customer_id": "c", "to": "a@example.com", "reason": "r"} | {field: SCRIPT}
    rendered = templates.cancelled(order_id=ORDER_ID, **values)
    assert "<script>" not in rendered.html
    assert ESCAPED_SCRIPT in rendered.html


def test_already_escaped_looking_input_is_escaped_again_not_trusted() -> None:
    rendered = received(customer_id='&lt;b&gt; & "q"')
    assert "Hello &amp;lt;b&amp;gt; &amp; &quot;q&quot;," in rendered.html


def test_html_structure_survives_hostile_input() -> None:
    rendered = received(customer_id="</p></table><img src=x onerror=alert(1)>")
    # Exactly the tags the template writes: none smuggled in by the input.
    assert rendered.html.count("<p>") == rendered.html.count("</p>")
    assert "<img" not in rendered.html
