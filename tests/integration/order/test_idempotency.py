"""Idempotency-Key: replays answer with the same order, conflicts with 409, races make one."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.order.support import count_rows, emitted, order_body


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"key-{uuid.uuid4()}"}


async def test_same_key_same_body_is_the_same_order_and_no_second_event(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = key()
    first = await client.post("/orders", json=order_body(), headers=headers)
    again = await client.post("/orders", json=order_body(), headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert len(await emitted(sessions, "order.created")) == 1
    assert (await count_rows(sessions))["orders"] == 1


async def test_the_body_is_compared_canonically(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = key() | {"content-type": "application/json"}
    body = order_body()
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=4).encode()
    first = await client.post("/orders", content=json.dumps(body).encode(), headers=headers)
    again = await client.post("/orders", content=reordered, headers=headers)
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert (await count_rows(sessions))["orders"] == 1


async def test_same_key_other_body_is_409_and_changes_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = key()
    first = await client.post("/orders", json=order_body(), headers=headers)
    other = await client.post(
        "/orders", json=order_body(payment_token="tok_other"), headers=headers
    )

    assert first.status_code == 202
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["detail"]
    counts = await count_rows(sessions)
    assert (counts["orders"], counts["outbox"], counts["idempotency_keys"]) == (1, 1, 1)


async def test_different_keys_place_different_orders(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await client.post("/orders", json=order_body(), headers=key())
    second = await client.post("/orders", json=order_body(), headers=key())
    assert first.json()["id"] != second.json()["id"]
    assert len(await emitted(sessions, "order.created")) == 2


async def test_a_refused_request_does_not_use_up_its_key(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = key()
    unknown = [{"sku": "NO-SUCH-SKU", "quantity": 1}]
    assert (
        await client.post("/orders", json=order_body(items=unknown), headers=headers)
    ).status_code == 422
    assert (await count_rows(sessions))["idempotency_keys"] == 0
    placed = await client.post("/orders", json=order_body(), headers=headers)
    assert placed.status_code == 202


async def test_twenty_concurrent_identical_requests_make_one_order(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = key()
    responses = await asyncio.gather(
        *(client.post("/orders", json=order_body(), headers=headers) for _ in range(20))
    )

    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.headers["location"] for r in responses}) == 1
    counts = await count_rows(sessions)
    assert (counts["orders"], counts["order_history"], counts["idempotency_keys"]) == (1, 1, 1)
    assert len(await emitted(sessions, "order.created")) == 1


async def test_concurrent_requests_with_one_key_and_two_bodies(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = key()
    bodies = [order_body(payment_token=f"tok_{i % 2}") for i in range(16)]
    responses = await asyncio.gather(
        *(client.post("/orders", json=body, headers=headers) for body in bodies)
    )

    accepted = [(b, r) for b, r in zip(bodies, responses, strict=True) if r.status_code == 202]
    refused = [(b, r) for b, r in zip(bodies, responses, strict=True) if r.status_code == 409]
    assert len(accepted) + len(refused) == 16
    winner = accepted[0][0]["payment_token"]
    assert {b["payment_token"] for b, _ in accepted} == {winner}
    assert {b["payment_token"] for b, _ in refused} == {"tok_0", "tok_1"} - {winner}
    assert len({r.json()["id"] for _, r in accepted}) == 1
    assert (await count_rows(sessions))["orders"] == 1
