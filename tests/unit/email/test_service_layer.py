"""The email use cases and handlers on fake units of work, a fake clock and the
in-memory sender: no database, no broker, no SMTP server.

Sending is claim (own transaction, committed) → SMTP → mark sent (own
transaction) → announce in the handler's unit of work; these tests follow an
email through each step and through the failures between them.
"""

import uuid
from datetime import timedelta

import pytest
from email_service import handlers, service_layer
from email_service.adapters.mail import InMemoryMailSender, MailError, MailRejected
from email_service.adapters.repository import EmailRepository
from email_service.domain.emails import Claim
from email_service.service import SERVICE
from email_service.unit_of_work import UnitOfWork
from events import PermanentError
from shop_contract import EmailKind, EmailSent, OrderCancelled, OrderConfirmed, OrderCreated
from shop_contract.testing import order_cancelled, order_confirmed, order_created
from sqlalchemy.exc import IntegrityError, OperationalError

from tests.unit.email.fakes import (
    DEFAULT_LEASE,
    SENDER,
    FakeEmailDatabase,
    FakeEmailRepository,
    FakeMailing,
    FakeUnitOfWork,
)

OrderEvent = OrderCreated | OrderConfirmed | OrderCancelled


class ProcessDied(BaseException):
    """The process stopped right there (killed, power cut): nothing after it runs."""


def connection_lost() -> OperationalError:
    """What SQLAlchemy raises when the server closed the connection at COMMIT."""
    return OperationalError("COMMIT", None, ConnectionResetError("connection lost"))


@pytest.fixture
def database() -> FakeEmailDatabase:
    return FakeEmailDatabase()


@pytest.fixture
def mailing(database: FakeEmailDatabase) -> FakeMailing:
    return FakeMailing(database)


@pytest.fixture
def mail(mailing: FakeMailing) -> InMemoryMailSender:
    return mailing.mail


async def handle(
    database: FakeEmailDatabase,
    event: OrderEvent,
    mailing: FakeMailing,
    *,
    commit_error: BaseException | None = None,
) -> FakeUnitOfWork:
    """One delivery: the service's handler for ``event`` in its own unit of work
    (whose commit fails with ``commit_error``, if given)."""
    async with FakeUnitOfWork(database, commit_error=commit_error) as uow:
        await SERVICE.handlers[type(event)](event, uow, mailing)  # type: ignore[arg-type]
    return uow


async def attempt(
    database: FakeEmailDatabase, event: OrderEvent, mailing: FakeMailing
) -> tuple[FakeUnitOfWork, BaseException]:
    """One delivery that is expected to fail: its unit of work, rolled back, and the error."""
    uow = FakeUnitOfWork(database)
    with pytest.raises(BaseException) as raised:
        async with uow:
            await SERVICE.handlers[type(event)](event, uow, mailing)  # type: ignore[arg-type]
    assert uow.rolled_back
    return uow, raised.value


def event_for(kind: EmailKind, order_id: uuid.UUID) -> OrderEvent:
    if kind == "received":
        return order_created(order_id)
    if kind == "confirmed":
        return order_confirmed(order_id)
    return order_cancelled(order_id)


def announced(
    order_id: uuid.UUID, kind: EmailKind = "received", to: str = "buyer@example.com"
) -> EmailSent:
    return EmailSent(order_id=order_id, kind=kind, to=to)


def test_the_fakes_stand_in_for_the_real_protocols() -> None:
    # mypy checks these assignments: the fakes implement the Protocols.
    repository: EmailRepository = FakeEmailRepository()
    uow: UnitOfWork = FakeUnitOfWork()
    mailing: service_layer.Mailing = FakeMailing(FakeEmailDatabase())

    assert repository is not None
    assert uow.emails is not None
    assert mailing.claim_lease == DEFAULT_LEASE


def test_the_service_handles_each_order_event_with_its_handler() -> None:
    assert dict(SERVICE.handlers) == {
        OrderCreated: handlers.on_order_created,
        OrderConfirmed: handlers.on_order_confirmed,
        OrderCancelled: handlers.on_order_cancelled,
    }


@pytest.mark.parametrize("kind", ["received", "confirmed", "cancelled"])
async def test_an_order_event_sends_its_email_records_it_and_announces_it(
    kind: EmailKind, database: FakeEmailDatabase, mailing: FakeMailing, mail: InMemoryMailSender
) -> None:
    order_id = uuid.uuid4()

    uow = await handle(database, event_for(kind, order_id), mailing)

    [message] = mail.sent
    assert message["From"] == SENDER
    assert message["To"] == "buyer@example.com"
    assert message["Message-ID"] == f"<{order_id}.{kind}@shop.example>"
    assert message["X-Email-Kind"] == kind
    row = database.row(order_id, kind)
    assert (row.recipient, row.message_id) == ("buyer@example.com", message["Message-ID"])
    assert (row.status, row.attempts, row.announced, row.failure) == ("sent", 1, True, None)
    assert row.sent_at is not None
    assert row.claimed_at < row.sent_at
    assert uow.emitted == [announced(order_id, kind)]
    assert database.outbox == [announced(order_id, kind)]
    # The claim and the mark each committed in a transaction of their own, and
    # neither announced anything: that is the handler's unit of work's job.
    claiming, marking = mailing.transactions
    assert claiming.committed
    assert marking.committed
    assert claiming.emitted == marking.emitted == []


async def test_a_second_delivery_of_the_same_email_sends_nothing_and_announces_nothing(
    database: FakeEmailDatabase, mailing: FakeMailing, mail: InMemoryMailSender
) -> None:
    order_id = uuid.uuid4()
    await handle(database, order_created(order_id), mailing)
    opened = len(mailing.transactions)

    again = await handle(database, order_created(order_id, customer_id="x"), mailing)

    assert len(mail.sent) == 1
    assert again.emitted == []
    assert again.committed
    assert len(database.emails) == 1
    assert database.row(order_id, "received").attempts == 1
    assert database.outbox == [announced(order_id)]
    # It only looked at the claim: nothing was marked.
    assert len(mailing.transactions) == opened + 1


async def test_each_kind_is_sent_once_whatever_the_order_of_events(
    database: FakeEmailDatabase, mailing: FakeMailing, mail: InMemoryMailSender
) -> None:
    order_id = uuid.uuid4()

    for event in (
        order_cancelled(order_id),
        order_created(order_id),
        order_confirmed(order_id),
        order_cancelled(order_id),
        order_created(order_id),
    ):
        await handle(database, event, mailing)

    kinds = ["cancelled", "received", "confirmed"]
    assert [message["X-Email-Kind"] for message in mail.sent] == kinds
    assert [event.kind for event in database.outbox if isinstance(event, EmailSent)] == kinds


async def test_a_claim_held_by_another_delivery_is_busy_a_transient_error(
    database: FakeEmailDatabase, mailing: FakeMailing, mail: InMemoryMailSender
) -> None:
    event = order_created()
    # Another delivery of the same email has claimed it and is talking to SMTP.
    async with mailing.transaction() as other:
        claim = await other.emails.claim(
            order_id=event.order_id,
            kind="received",
            recipient=event.email,
            message_id=f"<{event.order_id}.received@shop.example>",
            lease=DEFAULT_LEASE,
        )
    assert claim is Claim.MINE
    database.clock.advance(DEFAULT_LEASE - timedelta(seconds=1))

    uow, error = await attempt(database, event, mailing)

    assert isinstance(error, service_layer.EmailBeingSent)
    assert not isinstance(error, PermanentError)  # the consumer retries it later
    assert mail.sent == []
    assert uow.emitted == []
    assert database.outbox == []
    row = database.row(event.order_id, "received")
    assert (row.status, row.attempts) == ("claimed", 1)


async def test_a_claim_left_by_a_crashed_sender_is_taken_over_after_the_lease(
    database: FakeEmailDatabase, mailing: FakeMailing, mail: InMemoryMailSender
) -> None:
    """The window left: SMTP accepted it and the process died before the mark."""
    event = order_created()
    mailing.lose_commits(None, ProcessDied())  # the claim commits; the mark never does

    with pytest.raises(ProcessDied):
        await handle(database, event, mailing)
    [first] = mail.sent
    assert database.row(event.order_id, "received").status == "claimed"

    # Within the lease the claim still holds: the retry waits, it does not send.
    database.clock.advance(DEFAULT_LEASE - timedelta(seconds=1))
    _, error = await attempt(database, event, mailing)
    assert isinstance(error, service_layer.EmailBeingSent)
    assert len(mail.sent) == 1
    assert database.outbox == []

    # After it, the claim is taken over and the email sent again, the same one.
    database.clock.advance(timedelta(seconds=2))
    retried = await handle(database, event, mailing)

    first_again, second = mail.sent
    assert first_again is first
    assert (
        second["Message-ID"] == first["Message-ID"] == f"<{event.order_id}.received@shop.example>"
    )
    row = database.row(event.order_id, "received")
    assert (row.status, row.attempts, row.announced) == ("sent", 2, True)
    assert retried.emitted == [announced(event.order_id)]
    assert database.outbox == [announced(event.order_id)]


async def test_a_permanent_refusal_is_a_permanent_error_gives_the_claim_up_and_announces_nothing(
    database: FakeEmailDatabase, mailing: FakeMailing, mail: InMemoryMailSender
) -> None:
    event = order_cancelled(email="nobody@example.com")
    mail.fail_next(MailRejected("recipients refused: nobody@example.com"))

    uow, error = await attempt(database, event, mailing)

    assert isinstance(error, PermanentError)
    assert "refused" in str(error)
    assert isinstance(error.__cause__, MailRejected)
    assert mail.sent == []
    assert uow.emitted == []
    assert database.outbox == []
    row = database.row(event.order_id, "cancelled")
    assert (row.status, row.announced) == ("failed", False)
    assert row.failure is not None
    assert "nobody@example.com" in row.failure
    async with FakeUnitOfWork(database) as reading:
        assert await service_layer.emails_of(reading, event.order_id) == []

    # Given up, not held: a replay of the dead letter (the address fixed at the
    # server, say) takes the claim at once and sends.
    await handle(database, event, mailing)
    assert len(mail.sent) == 1
    assert database.row(event.order_id, "cancelled").attempts == 2
    assert database.outbox == [announced(event.order_id, "cancelled", to="nobody@example.com")]


async def test_a_temporary_failure_gives_the_claim_up_re_raises_and_the_retry_sends(
    database: FakeEmailDatabase, mailing: FakeMailing, mail: InMemoryMailSender
) -> None:
    event = order_created()
    mail.fail_next(MailError("SMTP 127.0.0.1:1025: no answer within 10s"))

    _, error = await attempt(database, event, mailing)

    # Not permanent: the consumer retries it later.
    assert isinstance(error, MailError)
    assert not isinstance(error, MailRejected | PermanentError)
    row = database.row(event.order_id, "received")
    assert (row.status, row.failure) == ("failed", "SMTP 127.0.0.1:1025: no answer within 10s")
    assert database.outbox == []

    # The retry does not wait for a lease: the claim was given up.
    await handle(database, event, mailing)

    assert len(mail.sent) == 1
    row = database.row(event.order_id, "received")
    assert (row.status, row.attempts, row.failure, row.announced) == ("sent", 2, None, True)
    assert database.outbox == [announced(event.order_id)]


async def test_the_claim_survives_a_rolled_back_handler_and_the_retry_only_announces(
    database: FakeEmailDatabase, mailing: FakeMailing, mail: InMemoryMailSender
) -> None:
    """The point of the design: the handler's commit is lost after SMTP accepted
    the email; the retry finds it sent, sends nothing and announces it once."""
    event = order_confirmed()

    with pytest.raises(OperationalError):
        await handle(database, event, mailing, commit_error=connection_lost())

    assert len(mail.sent) == 1
    row = database.row(event.order_id, "confirmed")
    assert (row.status, row.announced) == ("sent", False)
    assert database.outbox == []

    retried = await handle(database, event, mailing)

    assert len(mail.sent) == 1
    assert retried.emitted == [announced(event.order_id, "confirmed")]
    assert database.outbox == [announced(event.order_id, "confirmed")]
    assert database.row(event.order_id, "confirmed").announced

    # And never again.
    again = await handle(database, event, mailing)
    assert again.emitted == []
    assert len(database.outbox) == 1


async def test_a_mark_lost_with_its_connection_is_tried_again_not_sent_again(
    database: FakeEmailDatabase,
    mailing: FakeMailing,
    mail: InMemoryMailSender,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service_layer, "MARK_SENT_PAUSES", (0, 0, 0))
    event = order_created()
    mailing.lose_commits(None, connection_lost())  # the claim commits, the first mark not

    uow = await handle(database, event, mailing)

    assert len(mail.sent) == 1
    claiming, lost, marking = mailing.transactions
    assert (claiming.committed, lost.rolled_back, marking.committed) == (True, True, True)
    assert database.row(event.order_id, "received").status == "sent"
    assert uow.emitted == [announced(event.order_id)]


async def test_a_mark_that_cannot_be_saved_fails_the_delivery_and_the_claim_holds(
    database: FakeEmailDatabase,
    mailing: FakeMailing,
    mail: InMemoryMailSender,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service_layer, "MARK_SENT_PAUSES", (0, 0, 0))
    event = order_created()
    # The database stays away through every attempt at the mark.
    mailing.lose_commits(None, *(connection_lost() for _ in service_layer.MARK_SENT_PAUSES))

    _, error = await attempt(database, event, mailing)

    assert isinstance(error, OperationalError)
    assert len(mail.sent) == 1
    assert database.row(event.order_id, "received").status == "claimed"
    # The claim keeps other deliveries off until its lease ends.
    _, busy = await attempt(database, event, mailing)
    assert isinstance(busy, service_layer.EmailBeingSent)
    assert len(mail.sent) == 1


async def test_a_mark_failing_for_another_reason_is_not_tried_again(
    database: FakeEmailDatabase, mailing: FakeMailing, mail: InMemoryMailSender
) -> None:
    event = order_created()
    broken = IntegrityError("UPDATE emails", None, ValueError("violates emails_status"))
    mailing.lose_commits(None, broken)

    _, error = await attempt(database, event, mailing)

    assert error is broken
    assert len(mailing.transactions) == 2  # claim, one mark
    assert len(mail.sent) == 1


async def test_send_once_uses_the_given_sender_address(database: FakeEmailDatabase) -> None:
    mailing = FakeMailing(database, from_address="Other <o@shop.example>")

    await handle(database, order_confirmed(), mailing)

    [message] = mailing.mail.sent
    assert message["From"] == "Other <o@shop.example>"


async def test_an_orders_sent_emails_are_listed_oldest_first(
    database: FakeEmailDatabase, mailing: FakeMailing
) -> None:
    order_id = uuid.uuid4()
    await handle(database, order_created(order_id), mailing)
    await handle(database, order_cancelled(order_id), mailing)
    await handle(database, order_created(), mailing)  # another order's
    mailing.mail.fail_next(MailError("down"))
    await attempt(database, order_confirmed(order_id), mailing)  # failed: not listed

    async with FakeUnitOfWork(database) as uow:
        listed = await service_layer.emails_of(uow, order_id)
        unknown = await service_layer.emails_of(uow, uuid.uuid4())

    assert [(email.order_id, email.kind) for email in listed] == [
        (order_id, "received"),
        (order_id, "cancelled"),
    ]
    assert listed[0].sent_at < listed[1].sent_at
    assert unknown == []
