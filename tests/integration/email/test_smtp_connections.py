"""SmtpMailSender keeps connections open, and never lets a broken one carry a message."""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest
from email_service.adapters.mail import MailError, MailRejected, SmtpMailSender

from tests.integration.email.support import SmtpSink, free_port, smtp_sink
from tests.support.apps import wait_until


def message(to: str = "ada@example.com") -> EmailMessage:
    built = EmailMessage()
    built["From"] = "orders@shop.example"
    built["To"] = to
    built["Subject"] = f"test {uuid.uuid4()}"
    built.set_content("hello")
    return built


@pytest.fixture
async def sender(sink: SmtpSink) -> AsyncIterator[SmtpMailSender]:
    made = SmtpMailSender(host=sink.host, port=sink.port, timeout=5)
    yield made
    await made.aclose()


async def test_messages_in_a_row_share_one_connection(
    sender: SmtpMailSender, sink: SmtpSink
) -> None:
    for _ in range(5):
        await sender.send(message())
    assert len(sink.deliveries) == 5
    assert len(sink.collector.greetings) == 1
    assert sender.idle_connections == 1
    # The EHLO name is the machine's, resolved once.
    assert sink.collector.greetings[0][1] == socket.getfqdn()


async def test_concurrent_sends_open_one_connection_each_and_keep_them(
    sender: SmtpMailSender, sink: SmtpSink
) -> None:
    await asyncio.gather(*(sender.send(message()) for _ in range(4)))
    await asyncio.gather(*(sender.send(message()) for _ in range(4)))
    assert len(sink.deliveries) == 8
    assert len(sink.collector.greetings) == 4
    assert sender.idle_connections == 4


async def test_a_refused_message_drops_its_connection(
    sender: SmtpMailSender, sink: SmtpSink
) -> None:
    sink.collector.refuse.add("nobody@example.com")
    with pytest.raises(MailRejected):
        await sender.send(message(to="nobody@example.com"))
    assert sender.idle_connections == 0
    await sender.send(message())
    assert len(sink.deliveries) == 1
    assert len(sink.collector.greetings) == 2


async def test_a_connection_the_server_closed_is_replaced(
    sender: SmtpMailSender, sink: SmtpSink
) -> None:
    await sender.send(message())
    assert sender.idle_connections == 1

    # The server goes away (closing every connection) and comes back on its port.
    sink.stop()

    async def closed() -> bool:
        return sender.idle_connections == 0

    await wait_until(closed, timeout=5)
    sink.start()
    await sender.send(message())
    assert len(sink.deliveries) == 2
    assert len(sink.collector.greetings) == 2


async def test_connections_idle_too_long_are_not_reused(sink: SmtpSink) -> None:
    sender = SmtpMailSender(host=sink.host, port=sink.port, timeout=5, idle_timeout=0)
    try:
        await sender.send(message())
        await sender.send(message())
    finally:
        await sender.aclose()
    assert len(sink.collector.greetings) == 2


async def test_aclose_says_quit_and_forgets_the_connections(
    sender: SmtpMailSender, sink: SmtpSink
) -> None:
    await asyncio.gather(*(sender.send(message()) for _ in range(3)))
    await sender.aclose()
    assert sender.idle_connections == 0


async def test_a_server_that_is_down_is_a_mail_error(sink: SmtpSink) -> None:
    sender = SmtpMailSender(host="127.0.0.1", port=free_port(), timeout=2)
    with pytest.raises(MailError):
        await sender.send(message())
    assert sender.idle_connections == 0


async def test_an_international_address_needs_a_server_offering_smtputf8(
    sender: SmtpMailSender, sink: SmtpSink
) -> None:
    """Without SMTPUTF8 the address cannot be carried, and never will be on this
    server: a refusal for good, and the connection is not reused."""
    with pytest.raises(MailRejected, match="cannot take this message"):
        await sender.send(message(to="ü@example.com"))
    assert sink.deliveries == []
    assert sender.idle_connections == 0

    with smtp_sink(smtputf8=True) as utf8_sink:
        utf8 = SmtpMailSender(host=utf8_sink.host, port=utf8_sink.port, timeout=5)
        try:
            await utf8.send(message(to="ü@example.com"))
        finally:
            await utf8.aclose()
    [delivery] = utf8_sink.deliveries
    assert delivery.rcpt_tos == ["ü@example.com"]
    assert delivery.message["To"] == "ü@example.com"
