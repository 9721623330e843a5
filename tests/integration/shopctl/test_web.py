"""``shopctl web``'s backend on a real broker: its server-sent event stream shows events,
dead letters, replays and queue counts as they happen, survives losing its connection,
keeps a slow browser's backlog bounded, and acts only for whom it should."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import aio_pika
import httpx
import pytest
from events import Envelope, declare_exchange, message_for
from shop_contract.testing import order_cancelled
from shopctl.keys import KeyFiles, ensure_keys
from shopctl.web.server import WebServer
from shopctl.web.settings import WebSettings

from tests.conftest import RABBITMQ_API
from tests.integration.shopctl.support import (
    cancelled,
    dead_letter,
    declare_service_queues,
    message_count,
)
from tests.support.accounts import ShopBroker, publish_as_owner
from tests.support.apps import wait_until
from tests.support.system import free_port

pytestmark = pytest.mark.timeout(60)


class Stream:
    """A browser's side of the stream: (event name, data) pairs as they come."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def read(self, response: httpx.Response) -> None:
        name, data = "message", ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif not line and data:
                await self.received.put((name, json.loads(data)))
                name, data = "message", ""

    async def next(
        self, name: str, matching: Callable[[Any], bool] = lambda _: True, timeout: float = 20
    ) -> Any:
        """The next ``name`` update that matches (others before it are passed over)."""
        async with asyncio.timeout(timeout):
            while True:
                got, data = await self.received.get()
                if got == name and matching(data):
                    return data


@contextlib.asynccontextmanager
async def running_web(settings: WebSettings) -> AsyncIterator[WebServer]:
    server = WebServer(settings)
    serving = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: _connected(settings.url), timeout=20, interval=0.1)
        yield server
    finally:
        server.stop()
        await asyncio.wait_for(serving, 15)


async def _connected(url: str) -> bool:
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        try:
            return bool((await client.get("/healthz")).json()["broker"]["connected"])
        except httpx.TransportError:
            return False


@contextlib.asynccontextmanager
async def subscribed(url: str) -> AsyncIterator[Stream]:
    stream = Stream()
    async with (
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(5, read=None)) as client,
        client.stream("GET", "/api/stream") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        reading = asyncio.create_task(stream.read(response))
        try:
            yield stream
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reading


def settings_for(broker: ShopBroker, secrets: Path, **overrides: Any) -> WebSettings:
    return WebSettings(
        port=free_port(),
        amqp_url=broker.url("operator"),
        order_url="http://127.0.0.1:9",  # no order service in this tier
        secrets=secrets,
        broker_user_prefix=broker.prefix,
        count_interval=0.2,
        **overrides,
    )


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    files = KeyFiles(tmp_path / "secrets")
    ensure_keys(files)
    return files.directory


async def test_the_stream_starts_with_a_snapshot_then_shows_each_event_and_its_publisher(
    shop_broker: ShopBroker, secrets: Path
) -> None:
    async with (
        running_web(settings_for(shop_broker, secrets)) as web,
        subscribed(web.settings.url) as stream,
    ):
        snapshot = await stream.next("snapshot")
        assert snapshot["status"]["connected"] is True
        assert snapshot["capabilities"]["replay"] == {"ok": True, "why": None}
        [sent] = await publish_as_owner(shop_broker, order_cancelled(uuid4(), reason="test"))
        update = await stream.next("step")
    step, order = update["step"], update["order"]
    assert (step["kind"], step["event_type"], step["order_id"]) == (
        "event",
        "order.cancelled",
        sent.correlation_id,
    )
    assert step["publisher"] == shop_broker.user("order")
    assert step["trusted"] is True
    assert step["event_id"] == str(sent.id)
    assert order["status"] == "CANCELLED"


async def test_a_dead_letter_shows_in_the_timeline_and_the_counts_and_is_replayed_from_the_page(
    shop_broker: ShopBroker, vhost_url: str, secrets: Path
) -> None:
    await declare_service_queues(vhost_url, "payment")
    async with (
        running_web(settings_for(shop_broker, secrets)) as web,
        subscribed(web.settings.url) as stream,
    ):
        await stream.next("snapshot")
        envelope = cancelled()
        letter_id = await dead_letter(vhost_url, "payment", envelope)
        step = (await stream.next("step", lambda u: u["step"]["kind"] == "dead_letter"))["step"]
        assert (step["service"], step["queue"], step["event_id"]) == (
            "payment",
            "payment.events.dlq",
            letter_id,
        )
        assert step["detail"] == "retries-exhausted: RuntimeError: gateway down"
        assert step["replayable"] is True
        depths = await stream.next("depths", lambda d: _dead_letters(d, "payment") == 1)
        assert _row(depths, "payment")["consumers"] == 0

        async with httpx.AsyncClient(base_url=web.settings.url, timeout=10) as client:
            letters = (await client.get("/api/dead-letters")).json()
            assert [(x["message_id"], x["reason"]) for x in letters] == [
                (letter_id, "retries-exhausted")
            ]
            replayed = await client.post(
                "/api/dead-letters/replay",
                json={"queue": "payment.events.dlq", "message_id": letter_id},
            )
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["replayed"] == 1
        step = (await stream.next("step", lambda u: u["step"]["kind"] == "replay"))["step"]
        assert step["event_id"] == letter_id
        assert step["publisher"] == shop_broker.user("payment")  # impersonated, as dlq does
        await stream.next("depths", lambda d: _dead_letters(d, "payment") == 0)
    assert await message_count(vhost_url, "payment.events") == 1


def _row(depths: list[dict[str, Any]], service: str) -> dict[str, Any]:
    return next(row for row in depths if row["service"] == service)


def _dead_letters(depths: list[dict[str, Any]], service: str) -> int | None:
    row = _row(depths, service)
    return None if row["missing"] else row["dead_letters"]


async def test_the_view_reconnects_when_its_connection_is_closed_and_says_so(
    shop_broker: ShopBroker, vhost_url: str, secrets: Path
) -> None:
    vhost = vhost_url.rsplit("/", 1)[1]
    async with (
        running_web(settings_for(shop_broker, secrets)) as web,
        subscribed(web.settings.url) as stream,
    ):
        await stream.next("snapshot")
        async with httpx.AsyncClient(base_url=RABBITMQ_API, timeout=10) as api:
            names: list[str] = []

            async def listed() -> bool:
                response = await api.get(f"/vhosts/{vhost}/connections")
                names[:] = [c["name"] for c in response.json()]
                return bool(names)

            await wait_until(listed, timeout=15)
            for name in names:
                await api.delete(f"/connections/{quote(name, safe='')}")
        lost = await stream.next("status", lambda s: not s["connected"])
        assert "reconnecting" in lost["message"]
        await stream.next("status", lambda s: s["connected"], timeout=20)
        await publish_events_quickly(vhost_url, [cancelled()])
        assert (await stream.next("step"))["step"]["event_type"] == "order.cancelled"


async def publish_events_quickly(url: str, envelopes: list[Envelope]) -> None:
    """Publish without waiting for each confirm: a burst, as a busy shop makes one."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=False)
        events = await declare_exchange(channel)
        for envelope in envelopes:
            await events.publish(message_for(envelope), envelope.type)


async def test_a_browser_that_stops_reading_costs_a_bounded_buffer_and_is_shown_a_gap(
    shop_broker: ShopBroker, vhost_url: str, secrets: Path
) -> None:
    """The stream's transport stops taking data (as when a browser stops reading and the
    socket buffers are full: the server's send waits) while events keep coming."""
    capacity, burst_size = 5, 50
    settings = settings_for(shop_broker, secrets, client_buffer=capacity)
    async with running_web(settings) as web:
        bodies: list[bytes] = []
        draining = asyncio.Event()

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.body":
                await draining.wait()  # stuck until the browser reads again
                bodies.append(message.get("body", b""))

        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()  # the browser never hangs up
            raise AssertionError("unreachable")

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/api/stream",
            "raw_path": b"/api/stream",
            "query_string": b"",
            "headers": [(b"host", f"127.0.0.1:{settings.port}".encode())],
            "http_version": "1.1",
            "scheme": "http",
            "server": ("127.0.0.1", settings.port),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
        }
        stuck = asyncio.create_task(web.app(scope, receive, send))
        try:
            async with subscribed(web.settings.url) as fast:
                await fast.next("snapshot")
                burst = [cancelled() for _ in range(burst_size)]
                await publish_events_quickly(vhost_url, burst)
                last = str(burst[-1].id)
                await fast.next("step", lambda u: u["step"]["event_id"] == last)
            draining.set()
            await wait_until(lambda: _has(bodies, b"event: gap"), timeout=10)
        finally:
            stuck.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stuck
    stream = b"".join(bodies).decode()
    gap = json.loads(stream.split("event: gap\ndata: ", 1)[1].split("\n", 1)[0])
    # held: the newest `capacity`; dropped: the snapshot and the rest of the burst
    assert gap == {"dropped": 1 + burst_size - capacity}
    after_gap = stream.split("event: gap", 1)[1]
    assert after_gap.count("event: step") == capacity
    assert last in after_gap


async def _has(bodies: list[bytes], text: bytes) -> bool:
    return text in b"".join(bodies)


async def test_without_a_signing_key_the_page_is_told_why_and_actions_are_refused(
    shop_broker: ShopBroker, tmp_path: Path
) -> None:
    settings = settings_for(shop_broker, tmp_path / "no-keys-here")
    async with (
        running_web(settings) as web,
        httpx.AsyncClient(base_url=web.settings.url, timeout=10) as client,
    ):
        capabilities = (await client.get("/api/state")).json()["capabilities"]
        assert capabilities["replay"]["ok"] is False
        assert "run `make setup` (or `shopctl keys`)" in capabilities["replay"]["why"]
        assert "SHOPCTL_TOKEN" in capabilities["replay"]["why"]
        assert capabilities["orders"]["ok"] is False
        replay = await client.post(
            "/api/dead-letters/replay",
            json={"queue": "payment.events.dlq", "message_id": "m-1"},
        )
        assert replay.status_code == 403
        assert "needs an operator token" in replay.json()["error"]
        order = await client.post(
            "/api/orders",
            json={
                "customer_id": "c-1",
                "email": "ada@example.com",
                "sku": "KEYBOARD-01",
                "quantity": 1,
                "payment_token": "tok_visa",
            },
        )
        assert order.status_code == 403
        assert "demo orders need a customer token" in order.json()["error"]


async def test_actions_refuse_other_origins_forms_and_other_host_names(
    shop_broker: ShopBroker, secrets: Path
) -> None:
    async with (
        running_web(settings_for(shop_broker, secrets)) as web,
        httpx.AsyncClient(base_url=web.settings.url, timeout=10) as client,
    ):
        body = {"queue": "payment.events.dlq", "message_id": "m-1"}
        foreign = await client.post(
            "/api/dead-letters/replay", json=body, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        form = await client.post("/api/dead-letters/replay", data=body)
        assert form.status_code == 403
        rebound = await client.get("/api/state", headers={"Host": "evil.example"})
        assert rebound.status_code == 400
        unknown = await client.post(
            "/api/dead-letters/replay", json={"queue": "events", "message_id": "m-1"}
        )
        assert unknown.status_code == 400
