"""Which SMTP failures are worth retrying, and the in-memory sender."""

from email.message import EmailMessage

import aiosmtplib
import pytest
from email_service.adapters.mail import InMemoryMailSender, MailError, MailRejected, classify


def refused(code: int) -> aiosmtplib.SMTPRecipientRefused:
    return aiosmtplib.SMTPRecipientRefused(code, "no", "a@example.com")


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (aiosmtplib.SMTPRecipientsRefused([refused(550)]), True),
        (aiosmtplib.SMTPRecipientsRefused([refused(550), refused(451)]), False),
        (aiosmtplib.SMTPRecipientsRefused([refused(450)]), False),
        (refused(553), True),
        (aiosmtplib.SMTPDataError(554, "spam"), True),
        (aiosmtplib.SMTPDataError(451, "try later"), False),
        (aiosmtplib.SMTPConnectError("refused"), False),
        (aiosmtplib.SMTPServerDisconnected("gone"), False),
        (aiosmtplib.SMTPSenderRefused(550, "bad sender", "orders@shop.example"), False),
        (aiosmtplib.SMTPAuthenticationError(535, "bad login"), False),
        # A non-ASCII address to a server without SMTPUTF8: no retry can carry it.
        (aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported"), True),
    ],
)
def test_only_a_refusal_of_this_very_message_is_permanent(
    error: aiosmtplib.SMTPException, permanent: bool
) -> None:
    mapped = classify(error)
    assert isinstance(mapped, MailError)
    assert isinstance(mapped, MailRejected) is permanent


async def test_in_memory_sender_keeps_messages_and_fails_when_told() -> None:
    sender = InMemoryMailSender()
    sender.fail_next(MailError("down"), times=2)
    message = EmailMessage()
    for _ in range(2):
        with pytest.raises(MailError, match="down"):
            await sender.send(message)
    assert sender.sent == []
    await sender.send(message)
    assert sender.sent == [message]
