"""A small SMTP sink for laptops without Mailpit: accept every message, print a line,
and keep it as an ``.eml`` file (one per message, written atomically)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP
from rich.text import Text

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1025
DEFAULT_MAILDIR = Path(".mail")
ORDER_HEADER = "X-Order-Id"
HOSTNAME = "shopctl-mail-sink"


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    received_at: datetime
    mail_from: str
    rcpt_tos: tuple[str, ...]
    subject: str
    order_id: str | None
    path: Path | None


class SinkHandler:
    """aiosmtpd handler: parses each message, stores it, reports it."""

    def __init__(self, *, maildir: Path | None, on_mail: Callable[[ReceivedMail], None]) -> None:
        self._maildir = maildir
        self._on_mail = on_mail

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content or b""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        received_at = datetime.now(UTC)
        path = None
        if self._maildir is not None:
            path = await asyncio.to_thread(_store, self._maildir, raw, received_at)
        self._on_mail(
            ReceivedMail(
                received_at=received_at,
                mail_from=str(envelope.mail_from or ""),
                rcpt_tos=tuple(str(r) for r in envelope.rcpt_tos),
                subject=str(message.get("Subject", "")),
                order_id=str(message[ORDER_HEADER]) if message[ORDER_HEADER] else None,
                path=path,
            )
        )
        return "250 Message accepted for delivery"


async def serve(
    handler: SinkHandler,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    on_ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or forever); ``on_ready`` gets the bound port."""
    loop = asyncio.get_running_loop()
    # SMTPUTF8, as Mailpit offers it: internationalised addresses are delivered.
    server = await loop.create_server(
        lambda: SMTP(handler, hostname=HOSTNAME, enable_SMTPUTF8=True), host, port
    )
    try:
        if on_ready is not None:
            on_ready(server.sockets[0].getsockname()[1])
        await (stop or asyncio.Event()).wait()
    finally:
        server.close()
        await server.wait_closed()


def format_mail(mail: ReceivedMail) -> Text:
    line = Text.assemble(
        (mail.received_at.astimezone().strftime("%H:%M:%S"), "dim"),
        "  ",
        (mail.mail_from, "cyan"),
        " → ",
        (", ".join(mail.rcpt_tos), "green"),
        "  ",
        (mail.subject, "bold"),
        "  ",
        (f"order {mail.order_id}" if mail.order_id else "no order id", "yellow"),
    )
    if mail.path is not None:
        line.append(f"  {mail.path}", style="dim")
    return line


def _store(maildir: Path, raw: bytes, received_at: datetime) -> Path:
    maildir.mkdir(parents=True, exist_ok=True)
    name = f"{received_at:%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex[:8]}.eml"
    target = maildir / name
    partial = maildir / f".{name}.tmp"
    partial.write_bytes(raw)
    os.replace(partial, target)  # readers never see half a message
    return target
