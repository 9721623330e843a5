"""Fan-out to browsers: a bounded buffer per browser that drops the oldest and says so,
a snapshot first for each newcomer, SSE framing, and who may press the buttons."""

from __future__ import annotations

import asyncio
import json

import pytest
from shopctl.web.actions import BadRequest, DemoOrder
from shopctl.web.guard import action_refused, allowed_hosts
from shopctl.web.stream import ClientBuffer, Gap, Hub, Update, frame, reconnect_hint

pytestmark = pytest.mark.timeout(10)


def step(n: int) -> Update:
    return Update("step", {"n": n})


async def test_a_slow_reader_gets_the_newest_updates_after_a_gap_marker() -> None:
    buffer = ClientBuffer(capacity=3)
    for n in range(10):
        buffer.put(step(n))
    assert await buffer.take() == [Gap(dropped=7), step(7), step(8), step(9)]
    buffer.put(step(10))
    assert await buffer.take() == [step(10)]  # the gap was told once
    assert buffer.dropped_total == 7


async def test_a_reader_waits_for_the_next_update() -> None:
    buffer = ClientBuffer()
    waiting = asyncio.create_task(buffer.take())
    await asyncio.sleep(0)
    assert not waiting.done()
    buffer.put(step(1))
    assert await asyncio.wait_for(waiting, 2) == [step(1)]


async def test_an_idle_reader_gets_nothing_after_its_timeout_and_none_once_closed() -> None:
    buffer = ClientBuffer()
    assert await buffer.take(timeout=0.01) == []
    buffer.put(step(1))
    buffer.close()
    assert await buffer.take() is None
    buffer.put(step(2))  # ignored
    assert await buffer.take() is None


def test_a_buffer_holds_at_least_one_update() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ClientBuffer(capacity=0)


async def test_a_newcomer_starts_with_a_snapshot_then_gets_what_is_published() -> None:
    version = {"n": 0}
    hub = Hub(lambda: Update("snapshot", dict(version)), capacity=10)
    hub.publish(step(0))  # nobody listening: nothing kept
    version["n"] = 1
    first = hub.subscribe()
    hub.publish(step(1))
    second = hub.subscribe()
    hub.publish(step(2))
    assert await first.take() == [Update("snapshot", {"n": 1}), step(1), step(2)]
    assert await second.take() == [Update("snapshot", {"n": 1}), step(2)]
    assert hub.subscribers == 2
    hub.unsubscribe(first)
    assert hub.subscribers == 1


async def test_closing_the_hub_ends_every_stream_and_refuses_newcomers() -> None:
    hub = Hub(lambda: Update("snapshot", {}))
    reader = hub.subscribe()
    await reader.take()
    waiting = asyncio.create_task(reader.take())
    hub.close()
    assert await asyncio.wait_for(waiting, 2) is None
    assert await hub.subscribe().take() is None
    assert hub.subscribers == 0


def test_updates_frame_as_one_sse_message_each() -> None:
    raw = frame(Update("step", {"text": "two\nlines", "odd": "\ud800"}))
    assert raw.endswith(b"\n\n")
    lines = raw.decode().split("\n")
    assert lines[0] == "event: step"
    assert lines[1].startswith("data: ")
    assert json.loads(lines[1].removeprefix("data: "))["text"] == "two\nlines"
    assert lines[2:] == ["", ""]
    assert frame(Gap(4)) == b'event: gap\ndata: {"dropped":4}\n\n'
    assert reconnect_hint(1500) == b"retry: 1500\n\n"


def test_only_json_from_this_page_may_act() -> None:
    ours = {"content-type": "application/json", "host": "127.0.0.1:8090"}
    assert action_refused(ours) is None
    assert action_refused({**ours, "origin": "http://127.0.0.1:8090"}) is None
    assert action_refused({**ours, "origin": "https://evil.example"}) == (
        "requests from https://evil.example are not accepted"
    )
    form = {"content-type": "application/x-www-form-urlencoded", "host": "127.0.0.1:8090"}
    assert action_refused(form) == "send JSON (Content-Type: application/json)"


def test_a_loopback_server_answers_to_loopback_names_only() -> None:
    assert "localhost" in allowed_hosts("127.0.0.1")
    assert "evil.example" not in allowed_hosts("127.0.0.1")
    assert allowed_hosts("0.0.0.0") == ["*"]


def test_a_demo_order_form_becomes_the_order_services_body() -> None:
    order = DemoOrder.parse(
        {
            "customer_id": " c-1 ",
            "email": "ada@example.com",
            "sku": "KEYBOARD-01",
            "quantity": "2",
            "payment_token": "tok_visa",
        }
    )
    assert order.body() == {
        "customer_id": "c-1",
        "email": "ada@example.com",
        "items": [{"sku": "KEYBOARD-01", "quantity": 2}],
        "payment_token": "tok_visa",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"customer_id": ""}, "customer_id is required"),
        ({"email": None}, "email is required"),
        ({"quantity": 0}, "quantity must be between 1 and 1000"),
        ({"quantity": True}, "quantity must be a whole number"),
        ({"quantity": "2.5"}, "quantity must be a whole number"),
    ],
)
def test_a_demo_order_form_that_cannot_be_sent_says_why(
    change: dict[str, object], message: str
) -> None:
    form = {
        "customer_id": "c-1",
        "email": "ada@example.com",
        "sku": "KEYBOARD-01",
        "quantity": 1,
        "payment_token": "tok_visa",
        **change,
    }
    with pytest.raises(BadRequest, match=message):
        DemoOrder.parse(form)
    with pytest.raises(BadRequest, match="a JSON object"):
        DemoOrder.parse([form])
