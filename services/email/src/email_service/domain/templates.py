"""The words of each email, as plain text and as HTML.

Every value that reaches the HTML part goes through ``_html``, which escapes it:
customer ids, SKUs, reasons and addresses come from users, and an email client
must never render them as markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from string import Template
from uuid import UUID

from shop_contract import OrderLine

SIGNATURE = "Shop"


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


class _Markup(str):
    """HTML we rendered ourselves: inserted as it is, never escaped twice."""


def _html(template: str, **values: object) -> _Markup:
    escaped = {
        name: value if isinstance(value, _Markup) else html.escape(str(value), quote=True)
        for name, value in values.items()
    }
    return _Markup(Template(template).substitute(escaped))


def short_id(order_id: UUID) -> str:
    """The first block of the order id, as people quote it: ``1234abcd…``."""
    return f"{order_id.hex[:8]}…"


def received(
    *,
    order_id: UUID,
    customer_id: str,
    to: str,
    lines: Sequence[OrderLine],
    total: Decimal,
    currency: str,
) -> Rendered:
    text = (
        f"Hello {customer_id},\n\n"
        f"we received your order {order_id}:\n\n"
        f"{_lines_text(lines, total, currency)}\n\n"
        "We are checking stock and payment now and will email you again\n"
        "as soon as your order is confirmed.\n"
        f"{_footer_text(to)}"
    )
    body = _html(
        "<p>Hello $customer,</p>\n"
        "<p>we received your order <strong>$order</strong>:</p>\n"
        "$lines\n"
        "<p>We are checking stock and payment now and will email you again"
        " as soon as your order is confirmed.</p>",
        customer=customer_id,
        order=order_id,
        lines=_lines_html(lines, total, currency),
    )
    return Rendered(
        subject=f"We received your order {short_id(order_id)}",
        text=text,
        html=_document(body, to),
    )


def confirmed(
    *,
    order_id: UUID,
    customer_id: str,
    to: str,
    lines: Sequence[OrderLine],
    total: Decimal,
    currency: str,
) -> Rendered:
    text = (
        f"Hello {customer_id},\n\n"
        f"good news: your order {order_id} is confirmed.\n\n"
        f"{_lines_text(lines, total, currency)}\n\n"
        "Thank you for shopping with us.\n"
        f"{_footer_text(to)}"
    )
    body = _html(
        "<p>Hello $customer,</p>\n"
        "<p>good news: your order <strong>$order</strong> is confirmed.</p>\n"
        "$lines\n"
        "<p>Thank you for shopping with us.</p>",
        customer=customer_id,
        order=order_id,
        lines=_lines_html(lines, total, currency),
    )
    return Rendered(
        subject=f"Your order {short_id(order_id)} is confirmed",
        text=text,
        html=_document(body, to),
    )


def cancelled(*, order_id: UUID, customer_id: str, to: str, reason: str) -> Rendered:
    text = (
        f"Hello {customer_id},\n\n"
        f"we are sorry: your order {order_id} was cancelled.\n\n"
        f"Reason: {reason}\n\n"
        "No payment has been taken; any authorization on your card is released.\n"
        f"{_footer_text(to)}"
    )
    body = _html(
        "<p>Hello $customer,</p>\n"
        "<p>we are sorry: your order <strong>$order</strong> was cancelled.</p>\n"
        "<p>Reason: $reason</p>\n"
        "<p>No payment has been taken; any authorization on your card is released.</p>",
        customer=customer_id,
        order=order_id,
        reason=reason,
    )
    return Rendered(
        subject=f"Your order {short_id(order_id)} was cancelled",
        text=text,
        html=_document(body, to),
    )


def _lines_text(lines: Sequence[OrderLine], total: Decimal, currency: str) -> str:
    rows = [
        f"  {line.quantity} x {line.sku} at {line.unit_price} {currency}"
        f" = {line.quantity * line.unit_price} {currency}"
        for line in lines
    ]
    return "\n".join([*rows, f"Total: {total} {currency}"])


def _lines_html(lines: Sequence[OrderLine], total: Decimal, currency: str) -> _Markup:
    rows = "\n".join(
        _html(
            "<tr><td>$sku</td><td>$quantity</td><td>$price $currency</td>"
            "<td>$amount $currency</td></tr>",
            sku=line.sku,
            quantity=line.quantity,
            price=line.unit_price,
            amount=line.quantity * line.unit_price,
            currency=currency,
        )
        for line in lines
    )
    return _html(
        "<table>\n"
        "<tr><th>SKU</th><th>Quantity</th><th>Unit price</th><th>Amount</th></tr>\n"
        "$rows\n"
        "</table>\n"
        "<p>Total: <strong>$total $currency</strong></p>",
        rows=_Markup(rows),
        total=total,
        currency=currency,
    )


def _footer_text(to: str) -> str:
    return f"\n-- \n{SIGNATURE}\nThis email was sent to {to}.\n"


def _document(body: _Markup, to: str) -> str:
    return _html(
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"></head>\n<body>\n'
        "$body\n"
        "<p>-- <br>$signature<br>This email was sent to $to.</p>\n"
        "</body>\n</html>\n",
        body=body,
        signature=SIGNATURE,
        to=to,
    )
