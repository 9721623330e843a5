"""Sending email: the ``MailSender`` port, its SMTP adapter and an in-memory fake.

Errors, in one place:

- ``MailError``: the server did not take the message (unreachable, timed out,
  a temporary 4xx answer...). Worth retrying later.
- ``MailRejected(MailError)``: the server refused this very message for good
  (a 5xx answer to its recipient or its content). Retrying cannot help.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_IDLE = 16  # above the consumer's concurrency: every slot keeps one
DEFAULT_IDLE_TIMEOUT = 60.0  # below common server idle limits (RFC 5321: >= 5 min)
# Answers about the recipient or the content, as opposed to the server or our login.
_ABOUT_THIS_MESSAGE = (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError)


class MailError(Exception):
    """The SMTP server did not accept the message; a later attempt may succeed."""


class MailRejected(MailError):
    """The SMTP server refused the message permanently (5xx)."""


class MailSender(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Return once the server has accepted ``message``; raise ``MailError`` otherwise."""


class SmtpMailSender:
    """Sends over SMTP, keeping connections open between messages.

    A connect + EHLO per message costs more client CPU than the message itself.
    Each send takes an idle connection (or opens one), and gives it back only if
    the whole transaction went through; after any failure the connection is
    dropped, so a half-finished SMTP dialogue never carries the next message.
    A connection the server closed while idle is seen as disconnected without a
    round trip and replaced.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        timeout: float = DEFAULT_TIMEOUT,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool = False,
        max_idle: int = DEFAULT_MAX_IDLE,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._username = username
        self._password = password
        self._start_tls = start_tls
        self._max_idle = max_idle
        self._idle_timeout = idle_timeout
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # LIFO: warmest first
        self._local_hostname: str | None = None

    async def send(self, message: EmailMessage) -> None:
        try:
            # aiosmtplib's timeout is per command; the outer one bounds the whole send.
            async with asyncio.timeout(self.timeout):
                client = await self._checkout()
                try:
                    refused, _ = await client.send_message(message)
                except BaseException:
                    client.close()
                    raise
                self._checkin(client)
        except TimeoutError as exc:
            raise MailError(
                f"SMTP {self.host}:{self.port}: no answer within {self.timeout}s"
            ) from exc
        except aiosmtplib.SMTPException as exc:
            raise classify(exc) from exc
        except OSError as exc:
            raise MailError(f"SMTP {self.host}:{self.port}: {exc!r}") from exc
        if refused:
            # Some recipients were accepted, others refused: the refused ones never get it.
            raise MailRejected(f"recipients refused: {sorted(refused)}")

    @property
    def idle_connections(self) -> int:
        """Open connections waiting for the next message."""
        return sum(1 for client, _ in self._idle if client.is_connected)

    async def aclose(self) -> None:
        """Say QUIT on every idle connection (at shutdown)."""
        idle, self._idle = self._idle, []
        for client, _ in idle:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await client.quit()
            client.close()

    async def _checkout(self) -> aiosmtplib.SMTP:
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if client.is_connected and now - since < self._idle_timeout:
                return client
            client.close()
        if self._local_hostname is None:
            # Once, not per connection: aiosmtplib would run getfqdn() in a thread
            # for every connection it opens without one.
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            username=self._username,
            password=self._password,
            # False, not aiosmtplib's "if offered": a plain sink stays plain.
            start_tls=self._start_tls,
            local_hostname=self._local_hostname,
        )
        await client.connect()
        return client

    def _checkin(self, client: aiosmtplib.SMTP) -> None:
        if len(self._idle) < self._max_idle and client.is_connected:
            self._idle.append((client, time.monotonic()))
        else:
            client.close()


def classify(error: aiosmtplib.SMTPException) -> MailError:
    """Map an aiosmtplib error to ours: 5xx about *this* message is permanent, and so is
    an address the server cannot carry (non-ASCII without SMTPUTF8)."""
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return MailRejected(f"the server cannot take this message: {error}")
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in error.recipients]
        if codes and all(_permanent(code) for code in codes):
            return MailRejected(f"recipients refused: {error}")
        return MailError(f"recipients deferred: {error}")
    if isinstance(error, _ABOUT_THIS_MESSAGE) and _permanent(error.code):
        return MailRejected(f"message refused: {error.code} {error.message}")
    # Connection trouble, 4xx answers, and 5xx about the sender or the login are
    # about the server or our configuration, not this message: retry them.
    return MailError(f"SMTP failure: {type(error).__name__}: {error}")


def _permanent(code: int) -> bool:
    return 500 <= code < 600


class InMemoryMailSender:
    """An honest fake ``MailSender``: keeps what it sends, fails when told to."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self._failures: list[MailError] = []

    def fail_next(self, error: MailError, *, times: int = 1) -> None:
        self._failures.extend([error] * times)

    async def send(self, message: EmailMessage) -> None:
        if self._failures:
            raise self._failures.pop(0)
        self.sent.append(message)
