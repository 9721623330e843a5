"""Handlers through real transactions, sending to a real SMTP server.

Sending is: claim ``(order_id, kind)`` in a short transaction of its own
(committed before SMTP) → SMTP → mark it sent (another short transaction) →
``email.sent`` in the handler's transaction. These tests break it between the
steps, on a real PostgreSQL and a real SMTP server.
"""

import asyncio
import dataclasses
import uuid
from typing import Any

import pytest
from email_service.adapters.mail import MailError, MailRejected, SmtpMailSender
from email_service.adapters.tables import emails
from email_service.dependencies import Dependencies
from email_service.service import SERVICE
from email_service.service_layer import MARK_SENT_PAUSES, EmailBeingSent
from events import Envelope, Event, Handler, PermanentError, Transaction, transaction
from events.testing import deliver, outbox_events
from prometheus_client import REGISTRY
from service_kit import Database
from shop_contract import OrderCancelled, OrderConfirmed, OrderCreated
from shop_contract.testing import order_cancelled, order_confirmed, order_created
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.email.conftest import CLAIM_LEASE
from tests.integration.email.support import (
    CONSUMER,
    SCRIPT,
    Interrupted,
    SmtpSink,
    count_emails,
    email_rows,
    free_port,
    smtp_sink,
    terminate_backend_of,
)
from tests.support.postgres import terminate_connections

Sessions = async_sessionmaker[AsyncSession]
INTERNATIONAL = "ü@example.com"


class ProcessDied(BaseException):
    """The process stopped right there: nothing after it runs, nothing commits."""


def handler(event: Event, dependencies: Any) -> Handler[Any]:
    """The service's handler for ``event``, as its consumer runs it."""
    return SERVICE.handler_for(type(event), dependencies)


async def handled(sessions: Sessions, event: Event, dependencies: Any) -> None:
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
    assert (row.status, row.attempts, row.announced, row.failure) == ("sent", 1, True, None)
    assert row.claimed_at <= row.sent_at
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


async def test_smtp_down_raises_gives_the_claim_up_and_the_retry_sends(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    closed = SmtpMailSender(host="127.0.0.1", port=free_port(), timeout=2)
    event = order_created()
    with pytest.raises(MailError) as raised:
        await handled(sessions, event, dataclasses.replace(dependencies, mail=closed))
    assert not isinstance(raised.value, MailRejected)  # retried by the consumer
    assert await count_emails(sessions) == 0
    [row] = await email_rows(sessions)
    assert (row.status, row.sent_at, row.announced) == ("failed", None, False)
    assert row.failure == str(raised.value)
    assert await outbox_events(sessions) == []

    # The retry, once the server is back, takes the given-up claim at once and sends.
    await handled(sessions, event, dependencies)
    assert len(sink.deliveries) == 1
    [row] = await email_rows(sessions)
    assert (row.status, row.attempts, row.failure, row.announced) == ("sent", 2, None, True)
    assert len(await outbox_events(sessions)) == 1


async def test_smtp_timeout_bounds_a_send_to_a_silent_server(
    sessions: Sessions, dependencies: Dependencies
) -> None:
    # A server that accepts the connection and never greets.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent_mail = SmtpMailSender(host="127.0.0.1", port=port, timeout=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(MailError, match="no answer within"):
            await handled(
                sessions, order_created(), dataclasses.replace(dependencies, mail=silent_mail)
            )
    finally:
        server.close()
    assert loop.time() - started < 3
    assert await count_emails(sessions) == 0
    assert await count_emails(sessions, "failed") == 1


async def test_refused_recipient_is_a_permanent_error(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    sink.collector.refuse.add("nobody@example.com")
    with pytest.raises(PermanentError, match="refused") as raised:
        await handled(sessions, order_cancelled(email="nobody@example.com"), dependencies)
    assert isinstance(raised.value.__cause__, MailRejected)
    assert sink.deliveries == []
    assert await count_emails(sessions) == 0
    [row] = await email_rows(sessions)
    assert (row.status, row.announced) == ("failed", False)
    assert await outbox_events(sessions) == []


async def test_an_international_address_to_a_server_without_smtputf8_is_a_permanent_error(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    """aiosmtpd, like many servers, does not offer SMTPUTF8 unless told: the address
    cannot be carried, and no retry changes that."""
    event = order_created(email=INTERNATIONAL)

    with pytest.raises(PermanentError, match="cannot take this message") as raised:
        await handled(sessions, event, dependencies)

    assert isinstance(raised.value.__cause__, MailRejected)
    assert sink.deliveries == []
    [row] = await email_rows(sessions)
    assert (row.recipient, row.status, row.announced) == (INTERNATIONAL, "failed", False)
    assert await outbox_events(sessions) == []


async def test_an_international_address_is_delivered_where_the_server_offers_smtputf8(
    sessions: Sessions, dependencies: Dependencies
) -> None:
    event = order_created(email=INTERNATIONAL)
    with smtp_sink(smtputf8=True) as utf8_sink:
        sender = SmtpMailSender(host=utf8_sink.host, port=utf8_sink.port, timeout=5)
        try:
            await handled(sessions, event, dataclasses.replace(dependencies, mail=sender))
        finally:
            await sender.aclose()

    [delivery] = utf8_sink.deliveries
    assert delivery.rcpt_tos == [INTERNATIONAL]
    assert delivery.message["To"] == INTERNATIONAL
    assert delivery.message["Message-ID"] == f"<{event.order_id}.received@shop.example>"
    [row] = await email_rows(sessions)
    assert (row.recipient, row.status, row.announced) == (INTERNATIONAL, "sent", True)
    [envelope] = await outbox_events(sessions)
    assert envelope.data["to"] == INTERNATIONAL


async def test_concurrent_duplicates_send_one_email_per_kind(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    order_id = uuid.uuid4()
    events = [
        event
        for _ in range(4)
        for event in (order_created(order_id), order_confirmed(order_id), order_cancelled(order_id))
    ]
    results = await asyncio.gather(
        *(handled(sessions, event, dependencies) for event in events), return_exceptions=True
    )

    # A delivery that found the claim held while its holder talked to SMTP is
    # told to come back (the consumer retries it); none failed otherwise.
    busy = [event for event, result in zip(events, results, strict=True) if result is not None]
    assert all(isinstance(r, EmailBeingSent) for r in results if r is not None), results
    # Their retries: every holder has finished by now, so they find it sent.
    for event in busy:
        await handled(sessions, event, dependencies)

    kinds = sorted(d.message["X-Email-Kind"] for d in sink.deliveries)
    assert kinds == ["cancelled", "confirmed", "received"]
    assert await count_emails(sessions) == 3
    assert {row.attempts for row in await email_rows(sessions)} == {1}
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
    assert len(await outbox_events(sessions)) == 10


async def test_a_full_consumer_at_once_fits_the_services_default_pool(
    database: str, dependencies: Dependencies, sink: SmtpSink
) -> None:
    """As in the service, handlers and their claims and marks share one pool: each
    delivery in flight holds a connection and needs a second one for a moment.
    The default pool must serve ``consumer_concurrency`` deliveries at once."""
    settings = SERVICE.settings(database_url=database)
    assert settings.db_pool_size > settings.consumer_concurrency
    pool = Database(settings.sqlalchemy_url, pool_size=settings.db_pool_size)
    try:
        shared = dataclasses.replace(dependencies, database=pool)
        events = [order_created() for _ in range(settings.consumer_concurrency)]
        await asyncio.gather(*(handled(pool.sessions, event, shared) for event in events))
        assert len(await outbox_events(pool.sessions)) == len(events)
    finally:
        await pool.close()
    assert len(sink.deliveries) == len(events)


async def test_cancellation_before_creation_still_sends_each_kind_once(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    order_id = uuid.uuid4()
    await handled(sessions, order_cancelled(order_id), dependencies)
    await handled(sessions, order_created(order_id), dependencies)
    await handled(sessions, order_cancelled(order_id), dependencies)
    assert [d.message["X-Email-Kind"] for d in sink.deliveries] == ["cancelled", "received"]


async def test_handler_rolled_back_after_smtp_accepted_does_not_send_again(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    """Before the claim had a transaction of its own, this sent the email twice."""
    event = order_created()
    on_created = handler(event, dependencies)

    async def handle_then_lose_the_commit() -> None:
        async with transaction(sessions, caused_by=Envelope.wrap(event)) as tx:
            await on_created(event, tx)
            raise RuntimeError("commit lost")

    with pytest.raises(RuntimeError, match="commit lost"):
        await handle_then_lose_the_commit()
    # The claim and the mark committed on their own; only the announcement was lost.
    [row] = await email_rows(sessions)
    assert (row.status, row.announced) == ("sent", False)
    assert await outbox_events(sessions) == []

    await handled(sessions, event, dependencies)

    assert len(sink.deliveries) == 1
    [row] = await email_rows(sessions)
    assert (row.status, row.attempts, row.announced) == ("sent", 1, True)
    [envelope] = await outbox_events(sessions)
    assert envelope.data["order_id"] == str(event.order_id)


async def test_handler_commit_failing_on_a_dead_connection_does_not_send_again(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    """The handler's connection is terminated after SMTP accepted, before its COMMIT.
    The consumer runs the delivery again at once on a fresh connection: it finds the
    email sent, and only announces it."""
    event = order_created()
    on_created = handler(event, dependencies)
    runs = 0

    async def handle_then_lose_the_connection(event: Event, tx: Transaction) -> None:
        nonlocal runs
        runs += 1
        await on_created(event, tx)
        if runs == 1:
            await terminate_backend_of(tx.session)

    delivery = await deliver(sessions, handle_then_lose_the_connection, event, consumer=CONSUMER)

    assert (delivery.outcome, runs) == ("handled", 2)
    assert len(sink.deliveries) == 1
    [row] = await email_rows(sessions)
    assert (row.status, row.attempts, row.announced) == ("sent", 1, True)
    assert len(await outbox_events(sessions)) == 1


@pytest.mark.parametrize("whom", ["its own connection", "every connection"])
async def test_connection_lost_before_the_mark_commits_does_not_send_again(
    whom: str, database: str, sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    """SMTP accepted the email; the connection marking it sent is terminated before
    its COMMIT (alone, or with every other one, as in the pg_terminate_backend fault
    scenario). The mark is made again on a fresh connection: one email, one event."""

    async def terminate(number: int, tx: Transaction) -> None:
        if number != 2:  # 1: the claim, 2: the mark
            return
        if whom == "its own connection":
            await terminate_backend_of(tx.session)
        else:
            await terminate_connections(database.rsplit("/", 1)[1])

    interrupted = Interrupted(dependencies, terminate)
    event = order_created()

    await handled(sessions, event, interrupted)

    if whom == "its own connection":
        assert interrupted.opened == 3  # claim, the mark lost, the mark again
    else:
        # The handler's own connection died too: the consumer ran the delivery
        # again at once, and its claim found the email sent.
        assert interrupted.opened == 4
    assert len(sink.deliveries) == 1
    [row] = await email_rows(sessions)
    assert (row.status, row.attempts, row.announced) == ("sent", 1, True)
    [envelope] = await outbox_events(sessions)
    assert envelope.data["order_id"] == str(event.order_id)

    # And a redelivery changes nothing.
    await handled(sessions, order_created(event.order_id), dependencies)
    assert len(sink.deliveries) == 1
    assert len(await outbox_events(sessions)) == 1


async def test_a_claim_left_by_a_crashed_sender_is_retried_after_its_lease_with_the_same_id(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    """The window that remains: SMTP accepted, the process died before the mark
    committed. Until the lease ends other deliveries wait; then one sends it again,
    with the same Message-ID so the receiver can drop it."""

    async def die_before_the_mark(number: int, tx: Transaction) -> None:
        if number == 2:
            raise ProcessDied

    event = order_created()
    with pytest.raises(ProcessDied):
        await handled(sessions, event, Interrupted(dependencies, die_before_the_mark))
    [row] = await email_rows(sessions)
    assert (row.status, row.attempts) == ("claimed", 1)

    with pytest.raises(EmailBeingSent):
        await handled(sessions, event, dependencies)
    assert len(sink.deliveries) == 1
    assert await outbox_events(sessions) == []

    # The lease runs out (the claim is made older rather than the test waiting).
    async with sessions() as session, session.begin():
        await session.execute(
            update(emails).values(claimed_at=emails.c.claimed_at - CLAIM_LEASE * 2)
        )
    await handled(sessions, event, dependencies)

    first, second = sink.deliveries
    assert first.message["Message-ID"] == second.message["Message-ID"]
    [row] = await email_rows(sessions)
    assert (row.status, row.attempts, row.announced) == ("sent", 2, True)
    assert len(await outbox_events(sessions)) == 1


async def test_a_mark_that_cannot_be_saved_fails_the_delivery_and_holds_the_claim(
    sessions: Sessions, dependencies: Dependencies, sink: SmtpSink
) -> None:
    """The database stays away through every attempt at the mark: the delivery
    fails, and the claim keeps every other delivery off until its lease ends."""
    marks = range(2, 2 + len(MARK_SENT_PAUSES))  # transaction 1 is the claim

    async def lose_every_mark(number: int, tx: Transaction) -> None:
        if number in marks:
            await terminate_backend_of(tx.session)

    interrupted = Interrupted(dependencies, lose_every_mark)
    # The last mark's lost connection makes the consumer run the delivery again at
    # once (as for any connection it saw die); that run finds the claim held.
    with pytest.raises(EmailBeingSent):
        await handled(sessions, order_created(), interrupted)

    assert interrupted.opened == 1 + len(marks) + 1
    assert len(sink.deliveries) == 1
    [row] = await email_rows(sessions)
    assert (row.status, row.announced) == ("claimed", False)
    assert await outbox_events(sessions) == []
