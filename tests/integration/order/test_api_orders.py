"""POST/GET through the real app: real database, real broker vhost."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import aio_pika
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.order.support import emitted, order_body, orders_counted, outbox_texts
from tests.support.apps import wait_until
from tests.support.tokens import opener

CATALOGUE = [
    {"sku": "HEADSET-01", "name": "Headset", "price": "59.00"},
    {"sku": "KEYBOARD-01", "name": "Mechanical keyboard", "price": "89.00"},
    {"sku": "MONITOR-27", "name": "27-inch monitor", "price": "249.00"},
    {"sku": "MOUSE-01", "name": "Wireless mouse", "price": "29.50"},
    {"sku": "USB-C-HUB", "name": "USB-C hub", "price": "39.90"},
    {"sku": "WEBCAM-01", "name": "HD webcam", "price": "45.00"},
]


async def test_products_are_the_seeded_catalogue(client: httpx.AsyncClient) -> None:
    response = await client.get("/products")
    assert response.status_code == 200
    assert response.json() == CATALOGUE


async def test_placing_an_order_answers_202_and_stores_it_with_its_event(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    placed_before = orders_counted("PENDING")
    response = await client.post("/orders", json=order_body())

    assert response.status_code == 202, response.text
    receipt = response.json()
    assert response.headers["location"] == f"/orders/{receipt['id']}"
    assert receipt["status"] == "PENDING"
    assert receipt["items"] == [
        {"sku": "KEYBOARD-01", "quantity": 2, "unit_price": "89.00"},
        {"sku": "USB-C-HUB", "quantity": 1, "unit_price": "39.90"},
    ]
    assert receipt["total"] == "217.90"
    assert receipt["currency"] == "EUR"
    assert set(receipt) == {"id", "status", "items", "total", "currency", "created_at"}
    assert orders_counted("PENDING") == placed_before + 1

    (created,) = await emitted(sessions, "order.created")
    assert created.correlation_id == receipt["id"]
    assert created.causation_id is None
    sealed = created.data.pop("sealed_payment_token")
    assert created.data == {
        "order_id": receipt["id"],
        "customer_id": "cust-42",
        "email": "buyer@example.com",
        "items": receipt["items"],
        "total": "217.90",
        "currency": "EUR",
    }
    # The card token reaches only the payment service: sealed for its key, even in
    # the outbox row (and any DLQ) every other consumer and operator may read.
    assert "tok_visa" not in (await outbox_texts(sessions))
    assert opener().open(sealed) == "tok_visa"

    order = (await client.get(response.headers["location"])).json()
    assert order["id"] == receipt["id"]
    assert order["status"] == "PENDING"
    assert order["reason"] is None
    assert order["items"] == receipt["items"]
    assert order["total"] == "217.90"
    assert order["created_at"] == order["updated_at"]
    assert order["history"] == [
        {
            "status": "PENDING",
            "at": receipt["created_at"],
            "event_type": "order.created",
            "event_id": str(created.id),
        }
    ]


async def test_the_order_created_event_reaches_the_broker(
    client: httpx.AsyncClient, vhost_url: str
) -> None:
    connection = await aio_pika.connect(vhost_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            "events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        probe = await channel.declare_queue("", exclusive=True)
        await probe.bind(exchange, "order.*")

        receipt = (await client.post("/orders", json=order_body())).json()

        messages: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def received() -> bool:
            message = await probe.get(no_ack=True, fail=False)
            if message is not None:
                messages.append(message)
            return bool(messages)

        await wait_until(received, timeout=10)
        (message,) = messages
        assert message.type == "order.created"
        assert message.correlation_id == receipt["id"]
        assert message.content_type == "application/json"


async def test_unknown_order_is_404_and_a_malformed_id_422(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"/orders/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert "not found" in missing.json()["detail"]
    malformed = await client.get("/orders/not-a-uuid")
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "order_id"]


async def test_unknown_sku_is_422_naming_the_line(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    items = [{"sku": "KEYBOARD-01", "quantity": 1}, {"sku": "NO-SUCH-SKU", "quantity": 1}]
    response = await client.post("/orders", json=order_body(items=items))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "items", 1, "sku"]
    assert error["type"] == "unknown_sku"
    assert "NO-SUCH-SKU" in error["msg"]
    assert await emitted(sessions) == []


async def test_a_repeated_sku_is_422_naming_the_second_line(client: httpx.AsyncClient) -> None:
    items = [
        {"sku": "MOUSE-01", "quantity": 1},
        {"sku": "KEYBOARD-01", "quantity": 1},
        {"sku": "MOUSE-01", "quantity": 2},
    ]
    response = await client.post("/orders", json=order_body(items=items))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "items", 2, "sku"]
    assert error["type"] == "duplicate_sku"


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"customer_id": ""}, ["body", "customer_id"]),
        ({"customer_id": "c" * 65}, ["body", "customer_id"]),
        ({"email": "nobody"}, ["body", "email"]),
        ({"email": "a" * 250 + "@example.com"}, ["body", "email"]),
        ({"items": []}, ["body", "items"]),
        ({"items": [{"sku": "MOUSE-01", "quantity": 1}] * 51}, ["body", "items"]),
        ({"items": [{"sku": "", "quantity": 1}]}, ["body", "items", 0, "sku"]),
        ({"items": [{"sku": "S" * 65, "quantity": 1}]}, ["body", "items", 0, "sku"]),
        ({"items": [{"sku": "MOUSE-01", "quantity": 0}]}, ["body", "items", 0, "quantity"]),
        ({"items": [{"sku": "MOUSE-01", "quantity": -1}]}, ["body", "items", 0, "quantity"]),
        ({"items": [{"sku": "MOUSE-01", "quantity": 1001}]}, ["body", "items", 0, "quantity"]),
        ({"items": [{"sku": "MOUSE-01", "quantity": True}]}, ["body", "items", 0, "quantity"]),
        ({"items": [{"sku": "MOUSE-01", "quantity": 1.5}]}, ["body", "items", 0, "quantity"]),
        ({"payment_token": ""}, ["body", "payment_token"]),
        ({"payment_token": "t" * 129}, ["body", "payment_token"]),
        ({"discount": "100%"}, ["body", "discount"]),
    ],
)
async def test_each_bad_field_is_422_naming_it(
    client: httpx.AsyncClient, changes: dict[str, Any], loc: list[Any]
) -> None:
    response = await client.post("/orders", json=order_body(**changes))
    assert response.status_code == 422
    assert loc in [error["loc"] for error in response.json()["detail"]]


async def test_an_oversized_order_says_so(client: httpx.AsyncClient) -> None:
    items = [{"sku": f"SKU-{i}", "quantity": 1} for i in range(51)]
    response = await client.post("/orders", json=order_body(items=items))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert "oversized" in error["msg"]


async def test_a_body_that_is_not_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/orders", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize("key", [b"k" * 129, "caf\u00e9-key".encode(), b"tab\there"])
async def test_a_bad_idempotency_key_is_422(client: httpx.AsyncClient, key: bytes) -> None:
    response = await client.post("/orders", json=order_body(), headers={b"Idempotency-Key": key})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_total_is_exact_decimal_arithmetic(client: httpx.AsyncClient) -> None:
    items = [{"sku": "USB-C-HUB", "quantity": 3}, {"sku": "MOUSE-01", "quantity": 7}]
    receipt = (await client.post("/orders", json=order_body(items=items))).json()
    assert Decimal(receipt["total"]) == Decimal("39.90") * 3 + Decimal("29.50") * 7
    assert receipt["total"] == "326.20"


async def test_metrics_show_orders_by_status(client: httpx.AsyncClient) -> None:
    await client.post("/orders", json=order_body())
    text = (await client.get("/metrics")).text
    assert 'orders_total{status="PENDING"}' in text
    assert 'orders_total{status="CONFIRMED"}' in text
