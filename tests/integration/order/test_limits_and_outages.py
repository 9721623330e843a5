"""Edges: body size limit (413), a database that cannot be reached (503), and a
connection that dies under a placement (placed all the same)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aio_pika
import httpx
from order_service.service import SERVICE
from order_service.settings import Settings
from service_kit import create_app
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.order.support import count_rows, order_body
from tests.support.apps import running_app, wait_until, with_test_keys
from tests.support.postgres import connections_closed_under
from tests.support.tokens import ShopAuth

LIMIT = 64 * 1024


def oversized_body() -> bytes:
    body = order_body(customer_id="c" * 10, payment_token="t" * 100)
    padding = "x" * (LIMIT + 1024)
    return json.dumps(body | {"padding": padding}).encode()


async def test_a_body_over_64_kib_is_413(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.post(
        "/orders", content=oversized_body(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert (await count_rows(sessions))["orders"] == 0


async def test_a_chunked_body_over_64_kib_is_413(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = oversized_body()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    response = await client.post(
        "/orders", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert (await count_rows(sessions))["orders"] == 0


async def test_unreachable_database_is_503_with_retry_after_and_writes_nothing(
    vhost_url: str,
) -> None:
    # Port 1 on localhost refuses connections: the database is down, the broker is not.
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/shop_order",
        amqp_url=vhost_url,
        migrate_on_start=False,
    )
    app = create_app(SERVICE, with_test_keys(settings))
    connection = await aio_pika.connect(vhost_url)
    async with connection, app.router.lifespan_context(app):
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            "events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        probe = await channel.declare_queue("", exclusive=True)
        await probe.bind(exchange, "#")
        # The 503 is an answer, not an application error: nothing is re-raised.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", auth=ShopAuth()
        ) as client:

            async def broker_up_database_down() -> bool:
                checks = (await client.get("/readyz")).json()["checks"]
                return bool(checks["broker"] and checks["consumers"] and not checks["database"])

            await wait_until(broker_up_database_down, timeout=15)
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "not ready"

            placed = await client.post(
                "/orders", json=order_body(), headers={"Idempotency-Key": "k-503"}
            )
            assert placed.status_code == 503
            assert int(placed.headers["retry-after"]) > 0
            assert "database" in placed.json()["detail"]

            read = await client.get("/products")
            assert read.status_code == 503
            assert "retry-after" in read.headers
        assert await probe.get(fail=False) is None, "no event may leave for a failed order"


async def test_orders_placed_together_survive_a_connection_that_dies_under_them(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The server may end a pooled connection in the instant after checkout
    (restart, ``pg_terminate_backend``); the checkout check cannot see that. The
    batch of placements then runs once more at once on a fresh connection, rather
    than answering every order in it 503."""
    async with running_app(SERVICE, settings, role="api") as (app, client):
        engine = app.state.runtime.database.engine
        with connections_closed_under(
            engine, "before_cursor_execute", statement="FROM products"
        ) as closed:
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/orders", json=order_body(), headers={"Idempotency-Key": f"dies-{n}"}
                    )
                    for n in range(6)
                )
            )
    assert closed, "no placement's connection was closed"
    assert [answer.status_code for answer in answers] == [202] * 6
    counts = await count_rows(sessions)
    assert (counts["orders"], counts["outbox"]) == (6, 6)
