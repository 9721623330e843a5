"""The running app: real database, broker vhost and SMTP server."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import aio_pika
import httpx
import pytest
from email_service.adapters.mail import SmtpMailSender
from email_service.adapters.tables import emails
from email_service.dependencies import Dependencies
from email_service.service import SERVICE
from email_service.settings import Settings
from events import DeadLetterReason, Envelope, Headers
from events.testing import outbox_events
from fastapi import FastAPI
from prometheus_client import REGISTRY
from shop_contract.testing import order_cancelled, order_created
from sqlalchemy import select, text

from tests.conftest import NewDatabase
from tests.integration.email.support import SCRIPT, SmtpSink
from tests.support.accounts import ShopBroker, publish_as_owner
from tests.support.apps import running_app, wait_until

App = tuple[FastAPI, httpx.AsyncClient]


@pytest.fixture
async def settings(new_database: NewDatabase, shop_broker: ShopBroker, sink: SmtpSink) -> Settings:
    return SERVICE.settings(
        database_url=await new_database("email"),
        amqp_url=shop_broker.url("email"),
        broker_user_prefix=shop_broker.prefix,
        migrate_on_start=False,
        smtp_host=sink.host,
        smtp_port=sink.port,
        smtp_timeout=5,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    async with running_app(SERVICE, settings) as running:
        yield running


async def test_the_app_hands_its_handlers_an_smtp_sender_from_the_settings(
    app: App, settings: Settings
) -> None:
    dependencies = app[0].state.runtime.dependencies

    assert isinstance(dependencies, Dependencies)
    assert dependencies.from_address == settings.smtp_from
    # Its claims and marks use the service's own pool; a claim is held for three
    # times the SMTP timeout before another delivery may take it over.
    assert dependencies.database is app[0].state.runtime.database
    assert dependencies.claim_lease == timedelta(seconds=3 * settings.smtp_timeout)
    assert isinstance(dependencies.mail, SmtpMailSender)
    mail = dependencies.mail
    assert (mail.host, mail.port, mail.timeout) == (
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_timeout,
    )


async def test_order_created_on_the_broker_becomes_one_email_and_email_sent(
    app: App, shop_broker: ShopBroker, sink: SmtpSink
) -> None:
    _, client = app
    order_id = uuid.uuid4()
    # Someone listening for email.sent, so the relay's publish is routable.
    connection = await aio_pika.connect(shop_broker.vhost_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            "events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        listener = await channel.declare_queue(exclusive=True)
        await listener.bind(exchange, "email.sent")

        # The same order announced twice (two event ids): still one email.
        await publish_as_owner(shop_broker, order_created(order_id), order_created(order_id))

        async def shown() -> bool:
            response = await client.get("/emails", params={"order_id": str(order_id)})
            return response.status_code == 200 and len(response.json()) == 1

        await wait_until(shown, timeout=15)
        [email] = (await client.get("/emails", params={"order_id": str(order_id)})).json()
        assert email["order_id"] == str(order_id)
        assert email["kind"] == "received"
        assert email["to"] == "buyer@example.com"
        assert datetime.fromisoformat(email["sent_at"]).tzinfo is not None

        [delivery] = sink.collector.about(order_id)
        assert delivery.message["X-Email-Kind"] == "received"

        got: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def announced() -> bool:
            message = await listener.get(no_ack=True, fail=False)
            if message is not None:
                got.append(message)
            return bool(got)

        await wait_until(announced, timeout=10)
        [message] = got
        assert message.type == "email.sent"
        assert message.correlation_id == str(order_id)
        assert Envelope.from_body(message.body).data["kind"] == "received"

    # Both deliveries handled (inbox holds both event ids), still one email.
    async def both_handled() -> bool:
        async with app[0].state.runtime.database.sessions() as session:
            query = text("SELECT count(*) FROM inbox WHERE correlation_id = :id")
            return bool((await session.execute(query, {"id": str(order_id)})).scalar_one() == 2)

    await wait_until(both_handled, timeout=15)
    assert len(sink.collector.about(order_id)) == 1


async def test_emails_of_an_order_in_the_order_they_were_sent(
    app: App, shop_broker: ShopBroker, sink: SmtpSink
) -> None:
    _, client = app
    order_id = uuid.uuid4()
    await publish_as_owner(shop_broker, order_created(order_id))

    async def count(n: int) -> bool:
        response = await client.get("/emails", params={"order_id": str(order_id)})
        return len(response.json()) == n

    await wait_until(lambda: count(1), timeout=15)
    await publish_as_owner(shop_broker, order_cancelled(order_id, reason=SCRIPT))
    await wait_until(lambda: count(2), timeout=15)

    listed = (await client.get("/emails", params={"order_id": str(order_id)})).json()
    assert [email["kind"] for email in listed] == ["received", "cancelled"]
    assert listed[0]["sent_at"] < listed[1]["sent_at"]
    cancellation = sink.collector.about(order_id)[1]
    assert "&lt;script&gt;" in cancellation.part("text/html")


async def test_unknown_order_has_no_emails(app: App) -> None:
    _, client = app
    response = await client.get("/emails", params={"order_id": str(uuid.uuid4())})
    assert response.status_code == 200
    assert response.json() == []


async def test_malformed_order_id_is_422_naming_the_field(app: App) -> None:
    _, client = app
    response = await client.get("/emails", params={"order_id": "not-a-uuid"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "order_id"]


async def test_without_order_id_it_is_422_there_is_no_list_of_everyones_mail(
    app: App,
) -> None:
    _, client = app
    response = await client.get("/emails")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "order_id"]


async def test_metrics_count_emails_sent_by_kind(
    app: App, shop_broker: ShopBroker, sink: SmtpSink
) -> None:
    _, client = app
    order_id = uuid.uuid4()
    await publish_as_owner(shop_broker, order_cancelled(order_id))
    await wait_until(lambda: _listed(client, order_id), timeout=15)
    metrics = (await client.get("/metrics")).text
    assert 'emails_sent_total{kind="cancelled"}' in metrics
    assert "email_send_failures_total" in metrics


async def _listed(client: httpx.AsyncClient, order_id: uuid.UUID) -> bool:
    response = await client.get("/emails", params={"order_id": str(order_id)})
    return bool(response.json())


def consumed(outcome: str) -> float:
    labels = {"queue": "email.events", "type": "order.created", "outcome": outcome}
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


async def test_an_address_the_smtp_server_cannot_carry_is_dead_lettered_at_once(
    app: App, shop_broker: ShopBroker, sink: SmtpSink
) -> None:
    """ü@example.com to a server without SMTPUTF8 (aiosmtpd's default): before, the
    permanent refusal was retried for 36 s, then dead-lettered. Now at once, once."""
    fastapi, client = app
    order_id = uuid.uuid4()
    retried, dead_lettered = consumed("retried"), consumed("dead_lettered")

    await publish_as_owner(shop_broker, order_created(order_id, email="ü@example.com"))

    connection = await aio_pika.connect(shop_broker.vhost_url)
    async with connection:
        channel = await connection.channel()
        dlq = await channel.declare_queue("email.events.dlq", passive=True)
        got: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def dead_letter() -> bool:
            message = await dlq.get(no_ack=True, fail=False)
            if message is not None:
                got.append(message)
            return bool(got)

        await wait_until(dead_letter, timeout=15)
    [letter] = got
    headers = letter.headers
    assert headers[Headers.DEAD_LETTER_REASON] == DeadLetterReason.PERMANENT_ERROR
    assert headers[Headers.EXCEPTION] == "PermanentError"
    assert "cannot take this message" in str(headers[Headers.EXCEPTION_MESSAGE])
    assert headers[Headers.ATTEMPTS] == 1
    assert headers[Headers.ORIGINAL_QUEUE] == "email.events"
    assert Envelope.from_body(letter.body).data["order_id"] == str(order_id)

    async def counted() -> bool:
        return consumed("dead_lettered") == dead_lettered + 1

    await wait_until(counted, timeout=5)
    assert consumed("retried") == retried  # no retry was ever scheduled

    # Nothing sent, nothing announced, nothing listed; the claim was given up.
    assert sink.collector.about(order_id) == []
    assert (await client.get("/emails", params={"order_id": str(order_id)})).json() == []
    sessions = fastapi.state.runtime.database.sessions
    assert await outbox_events(sessions, correlation_id=str(order_id)) == []
    async with sessions() as session:
        query = select(emails.c.status, emails.c.attempts).where(emails.c.order_id == order_id)
        assert (await session.execute(query)).all() == [("failed", 1)]
