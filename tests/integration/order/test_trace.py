"""Each order.created continues the trace of the request that placed it, also
when several requests are placed together in one transaction (group commit)."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from service_kit.telemetry import configure_tracing
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.order.support import order_body

pytestmark = pytest.mark.timeout(60)


async def test_orders_placed_together_each_keep_their_own_trace(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    configure_tracing("order")  # as the process does before it serves
    traces = [uuid.uuid4().hex for _ in range(12)]

    async def place(trace_id: str) -> tuple[str, str]:
        parent = f"00-{trace_id}-00f067aa0ba902b7-01"
        response = await client.post("/orders", json=order_body(), headers={"traceparent": parent})
        assert response.status_code == 202, response.text
        return str(response.json()["id"]), trace_id

    placed = dict(await asyncio.gather(*(place(trace_id) for trace_id in traces)))

    async with sessions() as session:
        rows = await session.execute(text("SELECT correlation_id, headers::text FROM outbox"))
        continued = {
            str(order_id): json.loads(headers)["traceparent"].split("-")[1]
            for order_id, headers in rows
        }
    assert continued == placed
