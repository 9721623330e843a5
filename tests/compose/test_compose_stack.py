"""The Compose stack for real: run by tests/compose/run.sh (`make test-compose`).

Talks to the stack as a user does, over the published HTTP ports (the public API of
../shared/CONTRACT.md, with bearer tokens signed by the key run.sh generated), Mailpit's,
RabbitMQ's and Prometheus's APIs, and drives it with `docker compose` itself. Outside
run.sh (no COMPOSE_TEST_ENV_FILE) there is no stack to test: skipped.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import yaml

from tests.compose import stack
from tests.support.tokens import ShopAuth

pytestmark = pytest.mark.skipif(
    not os.environ.get("COMPOSE_TEST_ENV_FILE"),
    reason="needs the Compose stack that tests/compose/run.sh (make test-compose) starts",
)

FINAL = {"CONFIRMED", "CANCELLED"}
REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "observability" / "prometheus" / "alerts.yml"
# How many replicas of each consumer the replica test starts.
SCALED = {"order-worker": 2, "inventory": 2, "payment": 2, "email": 2}


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
        self.http = http
        self.refresh()

    def refresh(self) -> None:
        """Read the published addresses again: a container started again (or a new
        replica) gets a new host port where Docker picks it."""
        env = stack.environment()
        self.order_url = env["ORDER_URL"]
        self.inventory_url = env["INVENTORY_URL"]
        self.payment_url = env["PAYMENT_URL"]
        self.email_url = env["EMAIL_URL"]
        self.mailpit_url = env["MAILPIT_URL"]

    async def place(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /orders as a client should: a 503 (with Retry-After) is retried with the
        same Idempotency-Key, so a retry never makes a second order."""
        key = uuid.uuid4().hex
        for _attempt in range(5):
            response = await self.http.post(
                f"{self.order_url}/orders", json=body, headers={"Idempotency-Key": key}
            )
            if response.status_code != 503:
                break
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
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
    # The customer named in a POST /orders body, an operator for everything else.
    async with httpx.AsyncClient(timeout=10, auth=ShopAuth()) as http:
        yield Stack(http)


def container_state(service: str) -> str:
    """State of the service's container(s): running, exited, restarting..."""
    rows = stack.containers(service)
    return ",".join(sorted({str(row.get("State", "")).lower() for row in rows})) or "none"


def container_health(service: str) -> str:
    rows = stack.containers(service)
    return ",".join(sorted({str(row.get("Health", "")).lower() for row in rows}))


def running_replicas(service: str) -> int:
    return sum(1 for row in stack.containers(service) if str(row.get("State")).lower() == "running")


_HANDLED = re.compile(r'^events_consumed_total\{[^}]*outcome="handled"[^}]*\} (\S+)$', re.MULTILINE)

# Read inside the container: only order-api publishes a fixed port, and a replica's
# own /metrics is what shows that it took its share.
_READ_METRICS = (
    "import os, urllib.request as u; "
    "url = 'http://127.0.0.1:%s/metrics' % os.environ['PORT']; "
    "print(u.urlopen(url, timeout=5).read().decode())"
)


_CREATED = re.compile(
    r'^events_published_total\{[^}]*outcome="published"[^}]*type="order\.created"[^}]*\} (\S+)$'
    r'|^events_published_total\{[^}]*type="order\.created"[^}]*outcome="published"[^}]*\} (\S+)$',
    re.MULTILINE,
)


def _metrics_of_replica(service: str, index: int) -> str:
    proc = stack.compose(
        "exec", "-T", "--index", str(index), service, "python", "-c", _READ_METRICS, timeout=60
    )
    return proc.stdout


def order_created_published() -> float:
    """order.created events published by every order-worker replica (the API role
    publishes nothing: its outbox rows are relayed by the workers)."""
    return sum(
        float(a or b)
        for index in range(1, running_replicas("order-worker") + 1)
        for a, b in _CREATED.findall(_metrics_of_replica("order-worker", index))
    )


def handled_by_replica(service: str) -> list[float]:
    """events_consumed_total{outcome="handled"} of each replica of `service`, by index."""
    return [
        sum(float(v) for v in _HANDLED.findall(_metrics_of_replica(service, index)))
        for index in range(1, running_replicas(service) + 1)
    ]


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


@pytest.mark.timeout(60)
async def test_the_broker_has_no_guest_and_the_operator_may_impersonate() -> None:
    """RABBITMQ_DEFAULT_USER set: no `guest` with its well-known password, over AMQP or
    HTTP; shop_operator (shopctl, the e2e taps) exists with impersonator + monitoring."""
    env = stack.environment()
    api = env["RABBITMQ_API_URL"]
    operator = (stack.OPERATOR_USER, os.environ["OPERATOR_AMQP_PASSWORD"])
    admin = (os.environ.get("RABBITMQ_ADMIN_USER", "admin"), os.environ["RABBITMQ_ADMIN_PASSWORD"])
    async with httpx.AsyncClient(timeout=10) as http:
        guest = await http.get(f"{api}/api/whoami", auth=("guest", "guest"))
        assert guest.status_code == 401, guest.text
        users = await http.get(f"{api}/api/users", auth=admin)
        users.raise_for_status()
        names = {u["name"] for u in users.json()}
        assert "guest" not in names, names
        whoami = await http.get(f"{api}/api/whoami", auth=operator)
        assert whoami.status_code == 200, whoami.text
        tags = whoami.json()["tags"]
        tags = set(tags.split(",") if isinstance(tags, str) else tags)
        assert {"impersonator", "monitoring"} <= tags, tags
    refused = await _amqp_login_error(stack.amqp_url("guest", "guest"))
    assert refused is not None, "guest/guest may log in over AMQP"
    assert await _amqp_login_error(stack.amqp_url(*operator)) is None
    print(f"\nguest refused over AMQP ({refused}) and HTTP; operator tags {sorted(tags)}")


async def _amqp_login_error(url: str) -> str | None:
    """None if an AMQP connection opens with these credentials, else why it did not."""
    try:
        connection = await aio_pika.connect(url, timeout=10)
    except Exception as exc:  # aio-pika/aiormq raise several kinds for a refused login
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


@pytest.mark.timeout(120)
async def test_a_replayed_order_is_published_once_by_the_worker(shop: Stack) -> None:
    """The same Idempotency-Key and body twice: one order, one order.created, relayed by
    order-worker (the e2e scenario reads this count from ORDER_URL, which is order-api
    here and publishes nothing); another body with that key: 409."""
    before = order_created_published()
    body = order_body("KEYBOARD-01")
    key = uuid.uuid4().hex
    first = await shop.http.post(
        f"{shop.order_url}/orders", json=body, headers={"Idempotency-Key": key}
    )
    again = await shop.http.post(
        f"{shop.order_url}/orders", json=body, headers={"Idempotency-Key": key}
    )
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]
    other = await shop.http.post(
        f"{shop.order_url}/orders",
        json={**body, "items": [{"sku": "KEYBOARD-01", "quantity": 2}]},
        headers={"Idempotency-Key": key},
    )
    assert other.status_code == 409, other.text
    await shop.wait_final(first.json()["id"], timeout=60)
    await asyncio.sleep(2)
    assert order_created_published() - before == 1


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
    shop.refresh()

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


@pytest.mark.timeout(600)
async def test_every_consumer_runs_as_two_replicas_and_each_effect_happens_once(
    shop: Stack,
) -> None:
    """`docker compose up --scale`: two order workers, two of inventory, payment and
    email (only order-api publishes a port, so the others scale). Under a burst of
    orders every replica takes a share of its queue, every order is CONFIRMED, paid
    once, mailed exactly twice, and the stock drops by exactly what was ordered."""
    scale = [arg for svc, n in SCALED.items() for arg in ("--scale", f"{svc}={n}")]
    started = time.monotonic()
    stack.compose("up", "-d", "--wait", "--wait-timeout", "300", "--no-build", *scale, timeout=400)
    for service, replicas in SCALED.items():
        assert running_replicas(service) == replicas, (service, stack.containers(service))
    scaled_in = time.monotonic() - started
    shop.refresh()
    before = {service: handled_by_replica(service) for service in SCALED}

    # A steady stream rather than one burst: this is about replicas sharing queues and
    # effects happening once, not about the front door's peak (make bench measures that).
    orders_count = 40
    await shop.set_stock("USB-C-HUB", 1000)
    gate = asyncio.Semaphore(4)

    async def place_one() -> dict[str, Any]:
        async with gate:
            return await shop.place(order_body("USB-C-HUB"))

    placed = await asyncio.gather(*(place_one() for _ in range(orders_count)))
    finals = await asyncio.gather(*(shop.wait_final(o["id"], timeout=180) for o in placed))
    assert Counter(f["status"] for f in finals) == {"CONFIRMED": orders_count}, [
        (f["id"], f["status"], f.get("reason")) for f in finals if f["status"] != "CONFIRMED"
    ]

    for order in placed:
        payment = await poll(
            "payment authorized",
            lambda order=order: _status_is(shop.payment(order["id"]), "AUTHORIZED"),
            timeout=60,
        )
        assert payment["amount"] == order["total"]

        async def two_emails(order: dict[str, Any] = order) -> list[dict[str, Any]] | None:
            emails = await shop.emails(order["id"])
            return emails if len(emails) >= 2 else None

        await poll(f"emails of {order['id']}", two_emails, timeout=60)
    await asyncio.sleep(3)  # a duplicate would show up by now
    for order in placed:
        kinds = sorted(e["kind"] for e in await shop.emails(order["id"]))
        assert kinds == ["confirmed", "received"], (order["id"], kinds)
        assert len(await shop.delivered(order["id"])) == 2, order["id"]

    stock = await shop.http.get(f"{shop.inventory_url}/stock/USB-C-HUB")
    stock.raise_for_status()
    assert stock.json()["available"] == 1000 - orders_count, stock.json()
    assert stock.json()["reserved"] == 0, stock.json()

    after = {service: handled_by_replica(service) for service in SCALED}
    shares = {s: [a - b for a, b in zip(after[s], before[s], strict=True)] for s in SCALED}
    idle = {s: share for s, share in shares.items() if min(share) <= 0}
    assert not idle, f"a replica handled nothing of its queue: {idle}"
    print(
        f"\nscaled {SCALED} in {scaled_in:.1f}s; {orders_count} orders CONFIRMED, paid once, "
        f"two emails each, stock exact; events handled per replica: {shares}"
    )


@pytest.mark.timeout(180)
async def test_prometheus_scrapes_every_container_and_loads_the_shop_rules() -> None:
    """Every running container of every service (both order roles, every replica) is a
    target, up, labelled with its shop service and role; the rule groups are
    deploy/observability/prometheus/alerts.yml's."""
    prometheus = stack.environment()["PROMETHEUS_URL"]
    expected = Counter(
        {
            ("order", "api"): running_replicas("order-api"),
            ("order", "worker"): running_replicas("order-worker"),
            ("inventory", "all"): running_replicas("inventory"),
            ("payment", "all"): running_replicas("payment"),
            ("email", "all"): running_replicas("email"),
        }
    )
    assert all(expected.values()), expected

    async with httpx.AsyncClient(timeout=10) as http:

        async def all_up() -> list[dict[str, Any]] | None:
            response = await http.get(f"{prometheus}/api/v1/targets", params={"state": "active"})
            response.raise_for_status()
            targets = [
                t for t in response.json()["data"]["activeTargets"] if t["labels"]["job"] == "shop"
            ]
            seen = Counter(
                (t["labels"].get("service"), t["labels"].get("role"))
                for t in targets
                if t["health"] == "up"
            )
            return targets if seen == expected and len(targets) == sum(expected.values()) else None

        try:
            targets = await poll("every container scraped and up", all_up, timeout=120, interval=2)
        except AssertionError:
            response = await http.get(f"{prometheus}/api/v1/targets")
            print(response.text)
            raise

        rules = await http.get(f"{prometheus}/api/v1/rules")
        rules.raise_for_status()
        loaded = [g["name"] for g in rules.json()["data"]["groups"]]
    want = [g["name"] for g in yaml.safe_load(ALERTS.read_text())["groups"]]
    assert loaded == want, (loaded, want)
    print(
        f"\nPrometheus scrapes {len(targets)} containers, all up "
        f"({dict(expected)}); rule groups {loaded}"
    )
