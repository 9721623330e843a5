"""mail-sink accepts real SMTP, reports each message and keeps it as .eml."""

import asyncio
import smtplib
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from shopctl.mailsink import ReceivedMail, SinkHandler, format_mail, serve

pytestmark = pytest.mark.timeout(20)


def send(port: int, order_id: str) -> None:
    message = EmailMessage()
    message["From"] = "shop@example.com"
    message["To"] = "customer@example.com"
    message["Subject"] = "We received your order"
    message["X-Order-Id"] = order_id
    message.set_content("Thanks!")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message)


async def test_each_message_is_reported_and_stored(tmp_path: Path) -> None:
    received: list[ReceivedMail] = []
    got_one = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    def on_mail(mail: ReceivedMail) -> None:
        received.append(mail)
        got_one.set()

    handler = SinkHandler(maildir=tmp_path / "mail", on_mail=on_mail)
    server = asyncio.create_task(
        serve(handler, host="127.0.0.1", port=0, on_ready=bound.set_result, stop=stop)
    )
    port = await asyncio.wait_for(bound, 5)

    await asyncio.to_thread(send, port, "order-42")
    await asyncio.wait_for(got_one.wait(), 5)
    stop.set()
    await asyncio.wait_for(server, 5)

    (mail,) = received
    assert mail.mail_from == "shop@example.com"
    assert mail.rcpt_tos == ("customer@example.com",)
    assert mail.subject == "We received your order"
    assert mail.order_id == "order-42"
    assert mail.path is not None
    assert mail.path.suffix == ".eml"
    assert list((tmp_path / "mail").iterdir()) == [mail.path]  # no temporary file left
    stored = BytesParser().parsebytes(mail.path.read_bytes())
    assert stored["X-Order-Id"] == "order-42"
    line = format_mail(mail).plain
    assert "customer@example.com" in line
    assert "order order-42" in line
