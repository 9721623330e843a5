"""The email use cases and handlers on a fake unit of work and the in-memory
sender: no database, no broker, no SMTP server."""

import uuid

import pytest
from email_service import handlers, service_layer
from email_service.adapters.mail import InMemoryMailSender, MailError, MailRejected
from email_service.adapters.repository import EmailRepository
from email_service.dependencies import Dependencies
from email_service.service import SERVICE
from email_service.unit_of_work import UnitOfWork
from events import PermanentError
from shop_contract import EmailKind, EmailSent, OrderCancelled, OrderConfirmed, OrderCreated
from shop_contract.testing import order_cancelled, order_confirmed, order_created

from tests.unit.email.fakes import FakeEmailDatabase, FakeEmailRepository, FakeUnitOfWork

SENDER = "Shop <orders@shop.example>"
OrderEvent = OrderCreated | OrderConfirmed | OrderCancelled


@pytest.fixture
def database() -> FakeEmailDatabase:
    return FakeEmailDatabase()


@pytest.fixture
def mail() -> InMemoryMailSender:
    return InMemoryMailSender()


@pytest.fixture
def dependencies(mail: InMemoryMailSender) -> Dependencies:
    return Dependencies(mail=mail, from_address=SENDER)


async def handle(
    database: FakeEmailDatabase, event: OrderEvent, dependencies: Dependencies
) -> FakeUnitOfWork:
    """One delivery: the service's handler for ``event`` in its own unit of work."""
    async with FakeUnitOfWork(database) as uow:
        await SERVICE.handlers[type(event)](event, uow, dependencies)
    return uow


def event_for(kind: EmailKind, order_id: uuid.UUID) -> OrderEvent:
    if kind == "received":
        return order_created(order_id)
    if kind == "confirmed":
        return order_confirmed(order_id)
    return order_cancelled(order_id)


def test_the_fakes_stand_in_for_the_real_protocols() -> None:
    # mypy checks these assignments: the fakes implement the Protocols.
    repository: EmailRepository = FakeEmailRepository()
    uow: UnitOfWork = FakeUnitOfWork()

    assert repository is not None
    assert uow.emails is not None


def test_the_service_handles_each_order_event_with_its_handler() -> None:
    assert dict(SERVICE.handlers) == {
        OrderCreated: handlers.on_order_created,
        OrderConfirmed: handlers.on_order_confirmed,
        OrderCancelled: handlers.on_order_cancelled,
    }


@pytest.mark.parametrize("kind", ["received", "confirmed", "cancelled"])
async def test_an_order_event_sends_its_email_records_it_and_announces_it(
    kind: EmailKind,
    database: FakeEmailDatabase,
    dependencies: Dependencies,
    mail: InMemoryMailSender,
) -> None:
    order_id = uuid.uuid4()

    uow = await handle(database, event_for(kind, order_id), dependencies)

    [message] = mail.sent
    assert message["From"] == SENDER
    assert message["To"] == "buyer@example.com"
    assert message["Message-ID"] == f"<{order_id}.{kind}@shop.example>"
    assert message["X-Email-Kind"] == kind
    [row] = database.emails.values()
    assert (row.order_id, row.kind, row.recipient, row.message_id) == (
        order_id,
        kind,
        "buyer@example.com",
        message["Message-ID"],
    )
    sent = EmailSent(order_id=order_id, kind=kind, to="buyer@example.com")
    assert uow.emitted == [sent]
    assert database.outbox == [sent]


async def test_a_second_delivery_of_the_same_email_sends_nothing(
    database: FakeEmailDatabase, dependencies: Dependencies, mail: InMemoryMailSender
) -> None:
    order_id = uuid.uuid4()
    await handle(database, order_created(order_id), dependencies)

    again = await handle(database, order_created(order_id, customer_id="x"), dependencies)

    assert len(mail.sent) == 1
    assert again.emitted == []
    assert again.committed
    assert len(database.emails) == 1
    assert len(database.outbox) == 1


async def test_each_kind_is_sent_once_whatever_the_order_of_events(
    database: FakeEmailDatabase, dependencies: Dependencies, mail: InMemoryMailSender
) -> None:
    order_id = uuid.uuid4()

    for event in (
        order_cancelled(order_id),
        order_created(order_id),
        order_confirmed(order_id),
        order_cancelled(order_id),
        order_created(order_id),
    ):
        await handle(database, event, dependencies)

    assert [message["X-Email-Kind"] for message in mail.sent] == [
        "cancelled",
        "received",
        "confirmed",
    ]
    assert [event.kind for event in database.outbox if isinstance(event, EmailSent)] == [
        "cancelled",
        "received",
        "confirmed",
    ]


async def test_a_permanent_smtp_refusal_becomes_a_permanent_error_and_saves_nothing(
    database: FakeEmailDatabase, dependencies: Dependencies, mail: InMemoryMailSender
) -> None:
    mail.fail_next(MailRejected("recipients refused: nobody@example.com"))

    with pytest.raises(PermanentError, match="refused") as raised:
        await handle(database, order_cancelled(email="nobody@example.com"), dependencies)

    assert isinstance(raised.value.__cause__, MailRejected)
    assert mail.sent == []
    assert database.emails == {}
    assert database.outbox == []


async def test_a_temporary_smtp_failure_propagates_rolls_back_and_the_retry_sends(
    database: FakeEmailDatabase, dependencies: Dependencies, mail: InMemoryMailSender
) -> None:
    event = order_created()
    mail.fail_next(MailError("SMTP 127.0.0.1:1025: no answer within 10s"))

    with pytest.raises(MailError) as raised:
        await handle(database, event, dependencies)

    # Not permanent: the consumer retries it later.
    assert not isinstance(raised.value, MailRejected | PermanentError)
    assert database.emails == {}
    assert database.outbox == []

    await handle(database, event, dependencies)

    assert len(mail.sent) == 1
    assert list(database.emails) == [(event.order_id, "received")]
    assert database.outbox == [
        EmailSent(order_id=event.order_id, kind="received", to="buyer@example.com")
    ]


async def test_send_once_uses_the_given_sender_address(
    database: FakeEmailDatabase, mail: InMemoryMailSender
) -> None:
    event = order_confirmed()

    await handle(database, event, Dependencies(mail=mail, from_address="Other <o@shop.example>"))

    [message] = mail.sent
    assert message["From"] == "Other <o@shop.example>"


async def test_an_orders_emails_are_listed_oldest_first(
    database: FakeEmailDatabase, dependencies: Dependencies
) -> None:
    order_id = uuid.uuid4()
    await handle(database, order_created(order_id), dependencies)
    await handle(database, order_cancelled(order_id), dependencies)
    await handle(database, order_created(), dependencies)  # another order's

    async with FakeUnitOfWork(database) as uow:
        listed = await service_layer.emails_of(uow, order_id)
        unknown = await service_layer.emails_of(uow, uuid.uuid4())

    assert [(email.order_id, email.kind) for email in listed] == [
        (order_id, "received"),
        (order_id, "cancelled"),
    ]
    assert listed[0].sent_at < listed[1].sent_at
    assert unknown == []
