"""tail watches the events exchange through a private queue, in a fresh vhost."""

import asyncio
from urllib.parse import quote

import httpx
import pytest
from shopctl.tail.lines import TailEvent
from shopctl.tail.stream import tail

from tests.conftest import RABBITMQ_API
from tests.integration.shopctl.support import cancelled, publish_events
from tests.support.apps import wait_until

pytestmark = pytest.mark.timeout(30)


async def start_tail(
    vhost_url: str, **options: object
) -> tuple[asyncio.Task[int], list[TailEvent]]:
    seen: list[TailEvent] = []
    ready = asyncio.Event()
    task = asyncio.create_task(tail(vhost_url, seen.append, ready=ready, **options))  # type: ignore[arg-type]
    await asyncio.wait_for(ready.wait(), 10)
    return task, seen


async def test_tail_sees_every_published_event_and_stops_at_count(vhost_url: str) -> None:
    task, seen = await start_tail(vhost_url, count=3, timeout=20)
    # its own server-named queue, and no other
    assert [name[:8] for name in await queues_in(vhost_url)] == ["amq.gen-"]
    envelopes = [cancelled() for _ in range(3)]
    await publish_events(vhost_url, envelopes)

    assert await asyncio.wait_for(task, 20) == 3
    await wait_until(lambda: _no_queues(vhost_url), timeout=10)  # gone with its connection
    assert [e.event_id for e in seen] == [str(x.id) for x in envelopes]
    assert {e.event_type for e in seen} == {"order.cancelled"}
    assert [e.order_id for e in seen] == [x.correlation_id for x in envelopes]
    assert all(e.service == "order" for e in seen)


async def test_tail_filters_by_order(vhost_url: str) -> None:
    order = "00000000-0000-0000-0000-0000000000b1"
    task, seen = await start_tail(vhost_url, count=2, timeout=20, order_id=order)
    await publish_events(vhost_url, [cancelled(), cancelled(order), cancelled(), cancelled(order)])
    assert await asyncio.wait_for(task, 20) == 2
    assert [e.order_id for e in seen] == [order, order]


async def test_tail_stops_at_its_timeout(vhost_url: str) -> None:
    task, seen = await start_tail(vhost_url, timeout=0.3)
    assert await asyncio.wait_for(task, 10) == 0
    assert seen == []


async def _no_queues(vhost_url: str) -> bool:
    return await queues_in(vhost_url) == []


async def queues_in(vhost_url: str) -> list[str]:
    vhost = vhost_url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=RABBITMQ_API, timeout=10) as api:
        response = await api.get(f"/queues/{vhost}")
        response.raise_for_status()
        return [q["name"] for q in response.json()]


async def test_tail_reconnects_when_its_connection_is_closed(vhost_url: str) -> None:
    notices: list[str] = []
    task, seen = await start_tail(vhost_url, count=1, timeout=25, on_notice=notices.append)
    vhost = vhost_url.rsplit("/", 1)[1]

    async def tail_connections() -> list[str]:
        async with httpx.AsyncClient(base_url=RABBITMQ_API, timeout=10) as api:
            response = await api.get(f"/vhosts/{vhost}/connections")
            response.raise_for_status()
            return [c["name"] for c in response.json()]

    names: list[str] = []

    async def listed() -> bool:
        names[:] = await tail_connections()
        return bool(names)

    await wait_until(listed, timeout=10)
    async with httpx.AsyncClient(base_url=RABBITMQ_API, timeout=10) as api:
        for name in names:
            await api.delete(f"/connections/{quote(name, safe='')}")
    await wait_until(lambda: _noticed(notices), timeout=10)

    # the tail is back: keep publishing until it sees one (it misses the outage)
    async def saw_one() -> bool:
        await publish_events(vhost_url, [cancelled()])
        return bool(seen)

    await wait_until(saw_one, timeout=15, interval=0.2)
    assert await asyncio.wait_for(task, 10) == 1
    assert "reconnecting" in notices[0]


async def _noticed(notices: list[str]) -> bool:
    return bool(notices)
