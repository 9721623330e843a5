"""Handlers through real transactions, sending to a real SMTP server."""

import asyncio
import json
import uuid
from typing import Any

import pytest
from email_service.adapters.mail import MailError, SmtpMailSender
from email_service.handlers import EmailHandlers
from events import Envelope, MessageContext, PermanentError
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.email.conftest import SENDER
from tests.integration.email.support import (
    SmtpSink,
    count_emails,
    deliver,
    email_rows,
    free_port,
    outbox_bodies,
)
from tests.unit.email.factories import SCRIPT, order_cancelled, order_confirmed, order_created

Sessions = async_sessionmaker[AsyncSession]


def event_and_handler(kind: str, handlers: EmailHandlers, order_id: uuid.UUID) -> tuple[Any, Any]:
    if kind == "received":
        return order_created(order_id, customer_id=SCRIPT), handlers.on_order_created
    if kind == "confirmed":
        return order_confirmed(order_id, customer_id=SCRIPT), handlers.on_order_confirmed
    return order_cancelled(order_id, customer_id="c-1", reason=SCRIPT), handlers.on_order_cancelled


def sent_count(kind: str) -> float:
    return REGISTRY.get_sample_value("emails_sent_total", {"kind": kind}) or 0.0


@pytest.mark.parametrize("kind", ["received", "confirmed", "cancelled"])
async def test_order_event_sends_one_email_with_text_and_escaped_html(
    kind: str, sessions: Sessions, handlers: EmailHandlers, sink: SmtpSink
) -> None:
    order_id = uuid.uuid4()
    event, handle = event_and_handler(kind, handlers, order_id)
    before = sent_count(kind)

    await deliver(sessions, handle, event)

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
    [body] = await outbox_bodies(sessions)
    envelope = Envelope.model_validate_json(body)
    assert envelope.type == "email.sent"
    assert envelope.correlation_id == str(order_id)
    assert envelope.data == {"order_id": str(order_id), "kind": kind, "to": "buyer@example.com"}
    assert sent_count(kind) == before + 1


async def test_same_email_handled_again_is_not_sent_again(
    sessions: Sessions, handlers: EmailHandlers, sink: SmtpSink
) -> None:
    order_id = uuid.uuid4()
    # Two deliveries with different event ids: the inbox cannot tell them apart,
    # only the emails table can.
    await deliver(sessions, handlers.on_order_created, order_created(order_id))
    await deliver(sessions, handlers.on_order_created, order_created(order_id, customer_id="x"))

    assert len(sink.deliveries) == 1
    assert await count_emails(sessions) == 1
    assert len(await outbox_bodies(sessions)) == 1


async def test_smtp_down_raises_and_leaves_nothing_behind(
    sessions: Sessions, sink: SmtpSink
) -> None:
    closed = EmailHandlers(
        sender=SmtpMailSender(host="127.0.0.1", port=free_port(), timeout=2), from_address=SENDER
    )
    event = order_created()
    with pytest.raises(MailError):
        await deliver(sessions, closed.on_order_created, event)
    assert await count_emails(sessions) == 0
    assert await outbox_bodies(sessions) == []

    # The retry, once the server is back, sends it.
    working = EmailHandlers(
        sender=SmtpMailSender(host=sink.host, port=sink.port, timeout=2), from_address=SENDER
    )
    await deliver(sessions, working.on_order_created, event)
    assert len(sink.deliveries) == 1
    assert await count_emails(sessions) == 1


async def test_smtp_timeout_bounds_a_send_to_a_silent_server(sessions: Sessions) -> None:
    # A server that accepts the connection and never greets.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    handlers = EmailHandlers(
        sender=SmtpMailSender(host="127.0.0.1", port=port, timeout=0.5), from_address=SENDER
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(MailError, match="no answer within"):
            await deliver(sessions, handlers.on_order_created, order_created())
    finally:
        server.close()
    assert loop.time() - started < 3
    assert await count_emails(sessions) == 0


async def test_refused_recipient_is_a_permanent_error(
    sessions: Sessions, handlers: EmailHandlers, sink: SmtpSink
) -> None:
    sink.collector.refuse.add("nobody@example.com")
    with pytest.raises(PermanentError, match="refused"):
        await deliver(
            sessions, handlers.on_order_cancelled, order_cancelled(email="nobody@example.com")
        )
    assert sink.deliveries == []
    assert await count_emails(sessions) == 0


async def test_concurrent_duplicates_send_one_email_per_kind(
    sessions: Sessions, handlers: EmailHandlers, sink: SmtpSink
) -> None:
    order_id = uuid.uuid4()
    deliveries = [
        deliver(sessions, handle, event)
        for _ in range(4)
        for event, handle in (
            (order_created(order_id), handlers.on_order_created),
            (order_confirmed(order_id), handlers.on_order_confirmed),
            (order_cancelled(order_id), handlers.on_order_cancelled),
        )
    ]
    await asyncio.gather(*deliveries)

    kinds = sorted(d.message["X-Email-Kind"] for d in sink.deliveries)
    assert kinds == ["cancelled", "confirmed", "received"]
    assert await count_emails(sessions) == 3
    sent = [json.loads(body)["data"]["kind"] for body in await outbox_bodies(sessions)]
    assert sorted(sent) == ["cancelled", "confirmed", "received"]


async def test_many_orders_at_once_each_get_their_email(
    sessions: Sessions, handlers: EmailHandlers, sink: SmtpSink
) -> None:
    events = [order_created() for _ in range(10)]
    await asyncio.gather(*(deliver(sessions, handlers.on_order_created, e) for e in events))
    assert sorted(d.message["X-Order-Id"] for d in sink.deliveries) == sorted(
        str(e.order_id) for e in events
    )


async def test_cancellation_before_creation_still_sends_each_kind_once(
    sessions: Sessions, handlers: EmailHandlers, sink: SmtpSink
) -> None:
    order_id = uuid.uuid4()
    await deliver(sessions, handlers.on_order_cancelled, order_cancelled(order_id))
    await deliver(sessions, handlers.on_order_created, order_created(order_id))
    await deliver(sessions, handlers.on_order_cancelled, order_cancelled(order_id))
    assert [d.message["X-Email-Kind"] for d in sink.deliveries] == ["cancelled", "received"]


async def test_commit_lost_after_smtp_accepted_resends_with_the_same_message_id(
    sessions: Sessions, handlers: EmailHandlers, sink: SmtpSink
) -> None:
    """The documented limit: SMTP accepted, then the transaction failed."""
    event = order_created()
    envelope = Envelope.wrap(event)

    async def handle_then_lose_the_commit() -> None:
        async with sessions() as session, session.begin():
            await handlers.on_order_created(event, MessageContext(session, envelope, retries=0))
            raise RuntimeError("commit lost")

    with pytest.raises(RuntimeError, match="commit lost"):
        await handle_then_lose_the_commit()
    assert await count_emails(sessions) == 0

    await deliver(sessions, handlers.on_order_created, event)
    first, second = sink.deliveries
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert await count_emails(sessions) == 1
