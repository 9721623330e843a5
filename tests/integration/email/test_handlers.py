"""Handlers through real transactions, sending to a real SMTP server."""

import asyncio
import uuid
from typing import Any

import pytest
from email_service.adapters.mail import MailError, SmtpMailSender
from email_service.dependencies import Dependencies
from email_service.service import SERVICE
from events import Envelope, Event, Handler, PermanentError, transaction
from events.testing import deliver, outbox_events
from prometheus_client import REGISTRY
from shop_contract import OrderCancelled, OrderConfirmed, OrderCreated
from shop_contract.testing import order_cancelled, order_confirmed, order_created
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.email.conftest import SENDER
from tests.integration.email.support import (
    CONSUMER,
    SCRIPT,
    SmtpSink,
    count_emails,
    email_rows,
    free_port,
)

Sessions = async_sessionmaker[AsyncSession]


def handler(event: Event, dependencies: Dependencies) -> Handler[Any]:
    """The service's handler for ``event``, as its consumer runs it."""
    return SERVICE.handler_for(type(event), dependencies)


async def handled(sessions: Sessions, event: Event, dependencies: Dependencies) -> None:
    """One delivery of ``event``, which the inbox sees for the first time."""
    delivery = await deliver(sessions, handler(event, dependencies), event, consumer=CONSUMER)
    assert delivery.outcome == "handled"


def event_for(kind: str, order_id: uuid.UUID) -> OrderCreated | OrderConfirmed | OrderCancelled:
    if kind == "received":
        return order_created(order_id, customer_id=SCRIPT)
    if kind == "confirmed":
        return order_confirmed(order_id, customer_id=SCRIPT)
    return order_cancelled(order_id, customer_id="c-1", reason=SCRIPT)


def sent_count(kind: str) -> float:
    return REGISTRY.get_sample_value("emails_sent_total", {"kind": kind}) or 0.0


@pytest.mark.parametrize("kind", ["received", "confirmed", "cancelled"])
async def test_order_event_sends_one_email_with_text_and_escaped_html(
    kind: str, sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    order_id = uuid.uuid4()
    event = event_for(kind, order_id)
    before = sent_count(kind)

    await handled(sessions, event, dependencies)

    [delivery] = sink.deliveries
    assert delivery.mail_from == "orders@shop.example"
    assert delivery.rcpt_tos == ["buyer@example.com"]
    message = delivery.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Message-ID"] == f"<{order_id}.{kind}@shop.example>"
    assert message["X-Order-Id"] == str(order_id)
    assert message["X-Email-Kind"] == kind
    assert order_id.hex[:8] in message["Subject"]
    html = delivery.part("text/html")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert SCRIPT in delivery.part("text/plain")

    [row] = await email_rows(sessions)
    assert (row.order_id, row.kind, row.recipient) == (order_id, kind, "buyer@example.com")
    assert row.message_id == message["Message-ID"]
    [envelope] = await outbox_events(sessions)
    assert envelope.type == "email.sent"
    assert envelope.correlation_id == str(order_id)
    assert envelope.data == {"order_id": str(order_id), "kind": kind, "to": "buyer@example.com"}
    assert sent_count(kind) == before + 1


async def test_same_email_handled_again_is_not_sent_again(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    order_id = uuid.uuid4()
    # Two deliveries with different event ids: the inbox cannot tell them apart,
    # only the emails table can.
    await handled(sessions, order_created(order_id), dependencies)
    await handled(sessions, order_created(order_id, customer_id="x"), dependencies)

    assert len(sink.deliveries) == 1
    assert await count_emails(sessions) == 1
    assert len(await outbox_events(sessions)) == 1


async def test_the_same_envelope_redelivered_is_a_duplicate_for_the_inbox(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    event = order_created()
    on_created = handler(event, dependencies)
    first = await deliver(sessions, on_created, event, consumer=CONSUMER)

    again = await deliver(sessions, on_created, event, envelope=first.envelope, consumer=CONSUMER)

    assert (first.outcome, again.outcome) == ("handled", "duplicate")
    assert len(sink.deliveries) == 1


async def test_smtp_down_raises_and_leaves_nothing_behind(
    sessions: Sessions, sink: SmtpSink
) -> None:
    closed = SmtpMailSender(host="127.0.0.1", port=free_port(), timeout=2)
    event = order_created()
    with pytest.raises(MailError):
        await handled(sessions, event, Dependencies(mail=closed, from_address=SENDER))
    assert await count_emails(sessions) == 0
    assert await outbox_events(sessions) == []

    # The retry, once the server is back, sends it.
    working = SmtpMailSender(host=sink.host, port=sink.port, timeout=2)
    try:
        await handled(sessions, event, Dependencies(mail=working, from_address=SENDER))
    finally:
        await working.aclose()
    assert len(sink.deliveries) == 1
    assert await count_emails(sessions) == 1


async def test_smtp_timeout_bounds_a_send_to_a_silent_server(sessions: Sessions) -> None:
    # A server that accepts the connection and never greets.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    dependencies = Dependencies(
        mail=SmtpMailSender(host="127.0.0.1", port=port, timeout=0.5), from_address=SENDER
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(MailError, match="no answer within"):
            await handled(sessions, order_created(), dependencies)
    finally:
        server.close()
    assert loop.time() - started < 3
    assert await count_emails(sessions) == 0


async def test_refused_recipient_is_a_permanent_error(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    sink.collector.refuse.add("nobody@example.com")
    with pytest.raises(PermanentError, match="refused"):
        await handled(sessions, order_cancelled(email="nobody@example.com"), dependencies)
    assert sink.deliveries == []
    assert await count_emails(sessions) == 0


async def test_concurrent_duplicates_send_one_email_per_kind(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    order_id = uuid.uuid4()
    deliveries = [
        handled(sessions, event, dependencies)
        for _ in range(4)
        for event in (order_created(order_id), order_confirmed(order_id), order_cancelled(order_id))
    ]
    await asyncio.gather(*deliveries)

    kinds = sorted(d.message["X-Email-Kind"] for d in sink.deliveries)
    assert kinds == ["cancelled", "confirmed", "received"]
    assert await count_emails(sessions) == 3
    sent = [envelope.data["kind"] for envelope in await outbox_events(sessions)]
    assert sorted(sent) == ["cancelled", "confirmed", "received"]


async def test_many_orders_at_once_each_get_their_email(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    events = [order_created() for _ in range(10)]
    await asyncio.gather(*(handled(sessions, e, dependencies) for e in events))
    assert sorted(d.message["X-Order-Id"] for d in sink.deliveries) == sorted(
        str(e.order_id) for e in events
    )


async def test_cancellation_before_creation_still_sends_each_kind_once(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    order_id = uuid.uuid4()
    await handled(sessions, order_cancelled(order_id), dependencies)
    await handled(sessions, order_created(order_id), dependencies)
    await handled(sessions, order_cancelled(order_id), dependencies)
    assert [d.message["X-Email-Kind"] for d in sink.deliveries] == ["cancelled", "received"]


async def test_commit_lost_after_smtp_accepted_resends_with_the_same_message_id(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    """The documented limit: SMTP accepted, then the transaction failed."""
    event = order_created()
    on_created = handler(event, dependencies)

    async def handle_then_lose_the_commit() -> None:
        async with transaction(sessions, caused_by=Envelope.wrap(event)) as tx:
            await on_created(event, tx)
            raise RuntimeError("commit lost")

    with pytest.raises(RuntimeError, match="commit lost"):
        await handle_then_lose_the_commit()
    assert await count_emails(sessions) == 0

    await handled(sessions, event, dependencies)
    first, second = sink.deliveries
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert await count_emails(sessions) == 1
