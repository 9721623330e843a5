"""The trace: a timeline built from sample service JSON, and gathering it over HTTP."""

import json

import httpx
import pytest
from rich.console import Console
from shopctl.errors import OrderNotFound, Unreachable
from shopctl.trace.render import story_view
from shopctl.trace.sources import ServiceUrls, Story, gather_story
from shopctl.trace.timeline import build_timeline

from tests.unit.shopctl.samples import ORDER_ID, consumer_dead_letter

ORDER = {
    "id": ORDER_ID,
    "status": "CANCELLED",
    "reason": "payment declined: card declined",
    "total": "19.98",
    "currency": "EUR",
    "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.99"}],
    "created_at": "2025-01-02T10:00:00+00:00",
    "history": [
        {
            "status": "PENDING",
            "at": "2025-01-02T10:00:00+00:00",
            "event_type": "order.created",
            "event_id": "11111111-0000-0000-0000-000000000000",
        },
        {
            "status": "CANCELLED",
            "at": "2025-01-02T10:00:02.500+00:00",
            "event_type": "payment.declined",
            "event_id": "22222222-0000-0000-0000-000000000000",
            "reason": "card declined",
        },
    ],
}
PAYMENT = {
    "order_id": ORDER_ID,
    "status": "DECLINED",
    "amount": "19.98",
    "reason": "card declined",
    "updated_at": "2025-01-02T10:00:01.200+00:00",
}
EMAILS = [
    {
        "order_id": ORDER_ID,
        "kind": "cancelled",
        "to": "a@example.com",
        "sent_at": "2025-01-02T10:00:03Z",
    },
    {
        "order_id": ORDER_ID,
        "kind": "received",
        "to": "a@example.com",
        "sent_at": "2025-01-02T10:00:00.300Z",
    },
]


def story(**overrides: object) -> Story:
    fields: dict[str, object] = {
        "order_id": ORDER_ID,
        "order": ORDER,
        "payment": PAYMENT,
        "emails": tuple(EMAILS),
        "dead_letters": (
            consumer_dead_letter(
                exception="RuntimeError",
                reason="retries-exhausted",
                message="smtp down",
                failed_at="2025-01-02T10:00:04+00:00",
                extra={"x-retry-count": 3, "x-last-error": "RuntimeError: smtp down"},
            ),
        ),
    }
    fields.update(overrides)
    return Story(**fields)  # type: ignore[arg-type]


def test_the_timeline_merges_every_source_in_time_order() -> None:
    timeline = build_timeline(story())
    assert [(e.service, e.what) for e in timeline] == [
        ("order", "status PENDING"),
        ("email", "email 'received' sent"),
        ("payment", "payment DECLINED"),
        ("order", "status CANCELLED"),
        ("email", "email 'cancelled' sent"),
        ("payment", "dead-lettered in payment.events.dlq"),
    ]
    cancelled = timeline[3]
    assert cancelled.cause == "payment.declined"
    assert "reason: card declined" in cancelled.detail
    assert cancelled.problem
    dead = timeline[-1]
    assert "retries-exhausted (RuntimeError: smtp down)" in dead.detail
    assert "3 retries" in dead.detail


def test_entries_without_a_time_come_last() -> None:
    payment = {k: v for k, v in PAYMENT.items() if k != "updated_at"}
    timeline = build_timeline(story(payment=payment, emails=(), dead_letters=()))
    assert timeline[-1].what == "payment DECLINED"
    assert timeline[-1].at is None


def test_an_order_without_history_still_has_its_creation() -> None:
    order = {"id": ORDER_ID, "status": "PENDING", "created_at": "2025-01-02T10:00:00Z"}
    timeline = build_timeline(story(order=order, payment=None, emails=(), dead_letters=()))
    assert [(e.what, e.detail) for e in timeline] == [("PENDING", "order placed")]


def test_replayed_dead_letters_show_the_replay() -> None:
    letter = consumer_dead_letter(
        extra={"x-replayed-at": "2025-01-02T11:00:00+00:00", "x-replay-count": 1},
        failed_at="2025-01-02T11:00:01+00:00",
    )
    timeline = build_timeline(story(dead_letters=(letter,)))
    assert [e.what for e in timeline[-2:]] == [
        "replayed from payment.events.dlq",
        "dead-lettered in payment.events.dlq",
    ]


def test_the_rendered_story_has_header_timeline_and_gaps() -> None:
    console = Console(width=220, record=True, color_system=None)
    view = story(gaps=("payment service: http://x unreachable (ConnectError)",))
    console.print(story_view(view, build_timeline(view)))
    text = console.export_text()
    assert f"order {ORDER_ID}" in text
    assert "CANCELLED" in text
    assert "19.98 EUR" in text
    assert "2025-01-02 10:00:02.500" in text
    assert "caused by payment.declined 22222222" in text
    assert "not shown: payment service" in text


def services(handler: httpx.MockTransport) -> dict[str, object]:
    return {
        "urls": ServiceUrls(order="http://order", payment="http://payment", email="http://email"),
        "amqp_url": None,
        "transport": handler,
    }


def fake_services(request: httpx.Request) -> httpx.Response:
    if request.url.host == "order":
        if request.url.path == f"/orders/{ORDER_ID}":
            return httpx.Response(200, json=ORDER)
        return httpx.Response(404, json={"detail": "not found"})
    if request.url.host == "payment":
        return httpx.Response(503, text="busy")
    if request.url.host == "email":
        assert request.url.params["order_id"] == ORDER_ID
        return httpx.Response(200, content=json.dumps(EMAILS))
    raise AssertionError(request.url)


async def test_the_story_is_gathered_and_a_failing_service_becomes_a_gap() -> None:
    found = await gather_story(ORDER_ID, **services(httpx.MockTransport(fake_services)))  # type: ignore[arg-type]
    assert found.order["status"] == "CANCELLED"
    assert found.payment is None
    assert len(found.emails) == 2
    assert found.gaps == ("payment service: http://payment/payments/" + ORDER_ID + " answered 503",)


async def test_an_unknown_order_is_reported() -> None:
    with pytest.raises(OrderNotFound):
        await gather_story("nope", **services(httpx.MockTransport(fake_services)))  # type: ignore[arg-type]


async def test_an_unreachable_order_service_is_reported() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(Unreachable, match="order service"):
        await gather_story(ORDER_ID, **services(httpx.MockTransport(refuse)))  # type: ignore[arg-type]
