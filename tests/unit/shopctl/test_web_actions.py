"""The demo-order form's backend: a customer token given on the page is used as given,
otherwise one is signed with the development key; without either, a clear refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from shopctl.keys import KeyFiles, ensure_keys
from shopctl.web.actions import BadRequest, DemoOrder, Identity, NotAllowed, place_order

FORM = {
    "customer_id": "c-1",
    "email": "ada@example.com",
    "sku": "KEYBOARD-01",
    "quantity": "2",
    "payment_token": "tok_visa",
}


class OrderService:
    """Answers POST /orders with 201 and remembers what it was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(201, json={"id": "o-1", "status": "PENDING"})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


def test_the_form_parses_into_one_order_line() -> None:
    order = DemoOrder.parse({**FORM, "token": ""})
    assert order.token is None
    assert order.body() == {
        "customer_id": "c-1",
        "email": "ada@example.com",
        "items": [{"sku": "KEYBOARD-01", "quantity": 2}],
        "payment_token": "tok_visa",
    }


@pytest.mark.parametrize("given", ["abc.def.ghi", "  abc.def.ghi\n", "Bearer abc.def.ghi"])
def test_a_pasted_token_is_kept_without_spaces_or_bearer(given: str) -> None:
    assert DemoOrder.parse({**FORM, "token": given}).token == "abc.def.ghi"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"token": "two words"}, "one word"),
        ({"token": 42}, "token must be text"),
        ({"quantity": 0}, "between 1 and"),
        ({"quantity": True}, "whole number"),
        ({"sku": " "}, "sku is required"),
    ],
)
def test_what_cannot_be_sent_is_refused_with_the_field(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        DemoOrder.parse({**FORM, **change})


async def test_a_given_token_is_sent_as_is_even_without_a_signing_key(tmp_path: Path) -> None:
    service = OrderService()
    identity = Identity(tmp_path / "no-keys")
    order = DemoOrder.parse({**FORM, "token": "given.token.here"})
    async with service.client() as client:
        status, answer = await place_order(client, "http://order", identity, order)
    assert (status, answer["id"]) == (201, "o-1")
    (request,) = service.requests
    assert request.url == "http://order/orders"
    assert request.headers["authorization"] == "Bearer given.token.here"
    assert request.headers["idempotency-key"].startswith("shopctl-web-")
    assert json.loads(request.content)["customer_id"] == "c-1"


async def test_without_a_given_token_one_is_signed_for_the_orders_customer(
    tmp_path: Path,
) -> None:
    files = KeyFiles(tmp_path / "secrets")
    ensure_keys(files)
    service = OrderService()
    async with service.client() as client:
        await place_order(client, "http://order", Identity(files.directory), DemoOrder.parse(FORM))
    token = service.requests[0].headers["authorization"].removeprefix("Bearer ")
    assert token.count(".") == 2  # a signed JWT, made here, not given


async def test_without_a_key_or_a_token_the_order_is_refused_and_says_how(
    tmp_path: Path,
) -> None:
    service = OrderService()
    async with service.client() as client:
        with pytest.raises(NotAllowed, match=r"shopctl token --customer ID"):
            await place_order(
                client, "http://order", Identity(tmp_path / "no-keys"), DemoOrder.parse(FORM)
            )
    assert service.requests == []
