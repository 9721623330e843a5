"""Sending email: the ``MailSender`` port, its SMTP adapter and an in-memory fake.

Errors, in one place:

- ``MailError``: the server did not take the message (unreachable, timed out,
  a temporary 4xx answer...). Worth retrying later.
- ``MailRejected(MailError)``: the server refused this very message for good
  (a 5xx answer to its recipient or its content). Retrying cannot help.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

DEFAULT_TIMEOUT = 10.0
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
    """Sends each message over its own SMTP connection (simple, and nothing to keep alive)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        timeout: float = DEFAULT_TIMEOUT,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._username = username
        self._password = password
        self._start_tls = start_tls

    async def send(self, message: EmailMessage) -> None:
        try:
            # aiosmtplib's timeout is per command; the outer one bounds the whole send.
            async with asyncio.timeout(self.timeout):
                refused, _ = await aiosmtplib.send(
                    message,
                    hostname=self.host,
                    port=self.port,
                    timeout=self.timeout,
                    username=self._username,
                    password=self._password,
                    # False, not aiosmtplib's "if offered": a plain sink stays plain.
                    start_tls=self._start_tls,
                )
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


def classify(error: aiosmtplib.SMTPException) -> MailError:
    """Map an aiosmtplib error to ours: 5xx about *this* message is permanent."""
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
