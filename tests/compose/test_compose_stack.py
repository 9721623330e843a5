"""The Compose stack for real: run by tests/compose/run.sh (`make test-compose`).

Talks to the stack as a user does, over the published HTTP ports (the public API of
../shared/CONTRACT.md) and Mailpit's API, and drives it with `docker compose` itself.
Outside run.sh (no COMPOSE_TEST_ENV_FILE) there is no stack to test: skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.compose import stack

pytestmark = pytest.mark.skipif(
    not os.environ.get("COMPOSE_TEST_ENV_FILE"),
    reason="needs the Compose stack that tests/compose/run.sh (make test-compose) starts",
)

FINAL = {"CONFIRMED", "CANCELLED"}


def order_body(sku: str = "MOUSE-01", quantity: int = 1, token: str = "tok_visa") -> dict[str, Any]:
    return {
        "customer_id": f"compose-{uuid.uuid4().hex[:8]}",
        "email": "buyer@example.com",
        "items": [{"sku": sku, "quantity": quantity}],
        "payment_token": token,
    }


async def poll(what: str, predicate: Any, timeout: float, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(interval)


class Stack:
    def __init__(self, http: httpx.AsyncClient) -> None:
        env = stack.environment()
        self.http = http
        self.order_url = env["ORDER_URL"]
        self.inventory_url = env["INVENTORY_URL"]
        self.payment_url = env["PAYMENT_URL"]
        self.email_url = env["EMAIL_URL"]
        self.mailpit_url = env["MAILPIT_URL"]

    async def place(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(
            f"{self.order_url}/orders",
            json=body,
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 202, response.text
        return dict(response.json())

    async def set_stock(self, sku: str, available: int) -> None:
        response = await self.http.put(
            f"{self.inventory_url}/stock/{sku}", json={"available": available}
        )
        assert response.status_code == 200, response.text

    async def order(self, order_id: str) -> dict[str, Any]:
        response = await self.http.get(f"{self.order_url}/orders/{order_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait_final(self, order_id: str, timeout: float) -> dict[str, Any]:
        async def final() -> dict[str, Any] | None:
            order = await self.order(order_id)
            return order if order["status"] in FINAL else None

        return dict(await poll(f"order {order_id} final", final, timeout))

    async def payment(self, order_id: str) -> dict[str, Any] | None:
        response = await self.http.get(f"{self.payment_url}/payments/{order_id}")
        return dict(response.json()) if response.status_code == 200 else None

    async def emails(self, order_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"{self.email_url}/emails", params={"order_id": order_id})
        assert response.status_code == 200, response.text
        return list(response.json())

    async def delivered(self, order_id: str) -> list[dict[str, list[str]]]:
        """Headers of the messages the SMTP sink (Mailpit) received for this order."""
        response = await self.http.get(f"{self.mailpit_url}/api/v1/messages")
        response.raise_for_status()
        found = []
        for message in response.json()["messages"]:
            headers = await self.http.get(
                f"{self.mailpit_url}/api/v1/message/{message['ID']}/headers"
            )
            headers.raise_for_status()
            values = {k.lower(): v for k, v in headers.json().items()}
            if order_id in values.get("x-order-id", []):
                found.append(values)
        return found


@pytest.fixture
async def shop() -> AsyncIterator[Stack]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield Stack(http)


def container_state(service: str) -> str:
    """State of the service's container(s): running, exited, restarting..."""
    proc = stack.compose("ps", "--all", "--format", "json", service, timeout=30)
    text = proc.stdout.strip()
    rows = (
        json.loads(text)
        if text.startswith("[")
        else [json.loads(line) for line in text.splitlines() if line]
    )
    return ",".join(sorted({str(row.get("State", "")).lower() for row in rows})) or "none"


def container_health(service: str) -> str:
    proc = stack.compose("ps", "--all", "--format", "json", service, timeout=30)
    text = proc.stdout.strip()
    rows = (
        json.loads(text)
        if text.startswith("[")
        else [json.loads(line) for line in text.splitlines() if line]
    )
    return ",".join(sorted({str(row.get("Health", "")).lower() for row in rows}))


@pytest.mark.timeout(120)
async def test_an_order_goes_pending_to_confirmed_and_both_emails_reach_mailpit(
    shop: Stack,
) -> None:
    await shop.set_stock("KEYBOARD-01", 10)
    placed = await shop.place(order_body("KEYBOARD-01", 1))
    assert placed["status"] == "PENDING"

    final = await shop.wait_final(placed["id"], timeout=60)
    assert final["status"] == "CONFIRMED", final
    assert [h["status"] for h in final["history"]] == ["PENDING", "CONFIRMED"]

    payment = await poll(
        "payment authorized",
        lambda: _status_is(shop.payment(placed["id"]), "AUTHORIZED"),
        timeout=30,
    )
    assert payment["amount"] == final["total"]

    async def two_delivered() -> list[dict[str, list[str]]] | None:
        delivered = await shop.delivered(placed["id"])
        return delivered if len(delivered) >= 2 else None

    delivered = await poll("two emails at Mailpit", two_delivered, timeout=30)
    kinds = sorted(h["x-email-kind"][0] for h in delivered)
    assert kinds == ["confirmed", "received"], delivered
    assert all(h["to"] == ["buyer@example.com"] for h in delivered), delivered
    assert sorted(e["kind"] for e in await shop.emails(placed["id"])) == kinds
    print(
        f"\norder {placed['id']}: PENDING -> CONFIRMED, payment {payment['status']} "
        f"{payment['amount']}, emails delivered over SMTP to Mailpit: {kinds}"
    )


async def _status_is(response: Any, status: str) -> dict[str, Any] | None:
    payment = await response
    return payment if payment and payment.get("status") == status else None


@pytest.mark.timeout(420)
async def test_orders_placed_around_a_killed_container_all_complete_after_it_starts(
    shop: Stack,
) -> None:
    """SIGKILL one service's container mid-flow, place more orders while it is down,
    `docker compose start` it again (which also re-runs its idempotent one-shots,
    setup and <svc>-migrate): every order ends CONFIRMED, paid, with two emails."""
    victim = os.environ.get("COMPOSE_TEST_VICTIM", "payment")
    assert victim in stack.services(), f"{victim} is not a service of the stack"
    order_service = stack.e2e_service("order")

    await shop.set_stock("HEADSET-01", 100)
    before = await asyncio.gather(*(shop.place(order_body("HEADSET-01")) for _ in range(5)))
    stack.compose("kill", victim, timeout=60)
    killed_at = time.monotonic()

    async def down() -> bool:
        return "running" not in container_state(victim)

    await poll(f"{victim} down after kill", down, timeout=30, interval=0.2)
    during: list[dict[str, Any]] = []
    if victim != order_service:
        during = list(
            await asyncio.gather(*(shop.place(order_body("HEADSET-01")) for _ in range(5)))
        )
        await asyncio.sleep(2)
        if victim == stack.e2e_service("payment"):
            # Without payment no order can be confirmed: the kill really interrupted the flow.
            statuses = [(await shop.order(o["id"]))["status"] for o in during]
            assert statuses == ["PENDING"] * len(during), statuses
        assert "running" not in container_state(victim), "the killed container came back by itself"

    stack.compose("start", victim, timeout=120)

    async def healthy() -> bool:
        return container_health(victim) in ("healthy", "")  # "" = no healthcheck

    await poll(f"{victim} healthy again", healthy, timeout=150, interval=1)
    restarted_in = time.monotonic() - killed_at

    orders = [*before, *during]
    finals = await asyncio.gather(*(shop.wait_final(o["id"], timeout=120) for o in orders))
    all_final_in = time.monotonic() - killed_at
    assert [f["status"] for f in finals] == ["CONFIRMED"] * len(orders), [
        (f["id"], f["status"]) for f in finals
    ]
    for order in orders:
        payment = await poll(
            "payment authorized",
            lambda order=order: _status_is(shop.payment(order["id"]), "AUTHORIZED"),
            timeout=30,
        )
        assert payment["amount"] == order["total"]

        async def two_emails(order: dict[str, Any] = order) -> list[dict[str, Any]] | None:
            emails = await shop.emails(order["id"])
            return emails if len(emails) >= 2 else None

        emails = await poll(f"emails of {order['id']}", two_emails, timeout=30)
        assert sorted(e["kind"] for e in emails) == ["confirmed", "received"], emails
    print(
        f"\nkilled {victim} with {len(before)} orders in flight, placed {len(during)} while "
        f"it was down; healthy again {restarted_in:.1f}s after the kill, all "
        f"{len(orders)} orders CONFIRMED {all_final_in:.1f}s after it"
    )
