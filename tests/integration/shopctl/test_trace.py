"""trace finds the order's dead letters in the real DLQs (services faked over HTTP)."""

import httpx
import pytest
from shopctl.trace.sources import ServiceUrls, gather_story
from shopctl.trace.timeline import build_timeline

from tests.integration.shopctl.support import cancelled, dead_letter, declare_service_queues

pytestmark = pytest.mark.timeout(30)


async def test_trace_includes_dead_letters_and_leaves_them_in_place(vhost_url: str) -> None:
    await declare_service_queues(vhost_url, *("order", "inventory", "payment", "email"))
    wanted = cancelled()
    order_id = wanted.correlation_id
    await dead_letter(vhost_url, "payment", cancelled())  # another order's
    dead_id = await dead_letter(vhost_url, "payment", wanted)
    await dead_letter(vhost_url, "email", wanted, {"x-exception": "SMTPServerDisconnected"})

    def services(request: httpx.Request) -> httpx.Response:
        if request.url.host == "order":
            return httpx.Response(
                200,
                json={
                    "id": order_id,
                    "status": "CANCELLED",
                    "history": [{"status": "PENDING", "at": "2025-01-02T10:00:00Z"}],
                },
            )
        if request.url.host == "payment":
            return httpx.Response(404)
        return httpx.Response(200, json=[])

    urls = ServiceUrls(order="http://order", payment="http://payment", email="http://email")
    story = await gather_story(
        order_id, urls=urls, amqp_url=vhost_url, transport=httpx.MockTransport(services)
    )

    assert story.gaps == ()
    assert {(x.queue, x.exception) for x in story.dead_letters} == {
        ("payment.events.dlq", "RuntimeError"),
        ("email.events.dlq", "SMTPServerDisconnected"),
    }
    assert dead_id in {x.message_id for x in story.dead_letters}
    timeline = build_timeline(story)
    assert timeline[0].what == "status PENDING"
    assert sum("dead-lettered" in e.what for e in timeline) == 2

    again = await gather_story(
        order_id, urls=urls, amqp_url=vhost_url, transport=httpx.MockTransport(services)
    )
    assert len(again.dead_letters) == 2  # peeking kept them
