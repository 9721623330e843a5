"""A client of the shop's public HTTP API, as a user or another program uses it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.apps import wait_until
from tests.support.system import System

FINAL = {"CONFIRMED", "CANCELLED"}


def order_body(
    *items: tuple[str, int], token: str = "tok_visa", **overrides: Any
) -> dict[str, Any]:
    return {
        "customer_id": f"cust-{uuid.uuid4().hex[:8]}",
        "email": "buyer@example.com",
        "items": [{"sku": sku, "quantity": qty} for sku, qty in items]
        or [{"sku": "MOUSE-01", "quantity": 1}],
        "payment_token": token,
        **overrides,
    }


class Shop:
    def __init__(self, system: System) -> None:
        self.system = system
        self.http: httpx.AsyncClient = system.http

    async def place(self, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return await self.http.post(
            f"{self.system.url('order')}/orders", json=body, headers=headers
        )

    async def place_ok(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.place(body)
        assert response.status_code == 202, response.text
        return dict(response.json())

    async def order(self, order_id: str) -> dict[str, Any]:
        response = await self.http.get(f"{self.system.url('order')}/orders/{order_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait_final(self, order_id: str, timeout: float = 30) -> dict[str, Any]:
        async def final() -> bool:
            return (await self.order(order_id))["status"] in FINAL

        try:
            await wait_until(final, timeout=timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(f"order {order_id} not final:\n{self.system.logs()}") from None
        return await self.order(order_id)

    async def stock(self, sku: str) -> dict[str, Any]:
        response = await self.http.get(f"{self.system.url('inventory')}/stock/{sku}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def set_stock(self, sku: str, available: int) -> None:
        response = await self.http.put(
            f"{self.system.url('inventory')}/stock/{sku}", json={"available": available}
        )
        assert response.status_code == 200, response.text

    async def payment(self, order_id: str) -> httpx.Response:
        return await self.http.get(f"{self.system.url('payment')}/payments/{order_id}")

    async def emails(self, order_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"{self.system.url('email')}/emails", params={"order_id": order_id}
        )
        assert response.status_code == 200, response.text
        return list(response.json())

    async def wait_emails(self, order_id: str, kinds: set[str], timeout: float = 30) -> None:
        async def sent() -> bool:
            return {e["kind"] for e in await self.emails(order_id)} >= kinds

        await wait_until(sent, timeout=timeout, interval=0.1)

    async def wait_payment(self, order_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        async def reached() -> bool:
            response = await self.payment(order_id)
            return response.status_code == 200 and response.json()["status"] == status

        await wait_until(reached, timeout=timeout, interval=0.1)
        return dict((await self.payment(order_id)).json())

    async def metric(self, service: str, name: str, **labels: str) -> float:
        """Sum of a Prometheus sample on a service's /metrics, over matching labels."""
        text = (await self.http.get(f"{self.system.url(service)}/metrics")).text
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            sample, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in sample for k, v in labels.items()):
                total += float(value)
        return total
