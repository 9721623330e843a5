"""The payment use cases and handlers on a fake unit of work: no database, no broker."""

from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from payment_service import handlers, service_layer
from payment_service.adapters.gateway import GatewayUnavailable
from payment_service.adapters.repository import PaymentRepository
from payment_service.adapters.sandbox_gateway import SandboxGateway
from payment_service.dependencies import Dependencies
from payment_service.domain import Payment, PaymentStatus
from payment_service.service import SERVICE
from payment_service.unit_of_work import UnitOfWork
from shop_contract import (
    OrderCancelled,
    OrderCreated,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentVoided,
)
from shop_contract.testing import order_cancelled, order_created

from tests.support.tokens import opener, sealer
from tests.unit.payment.fakes import (
    FakePaymentDatabase,
    FakePaymentRepository,
    FakeUnitOfWork,
    VoidFailsOnce,
)


@pytest.fixture
def database() -> FakePaymentDatabase:
    return FakePaymentDatabase()


@pytest.fixture
def sandbox() -> SandboxGateway:
    return SandboxGateway()


async def authorize(
    database: FakePaymentDatabase, gateway: SandboxGateway, event: OrderCreated
) -> FakeUnitOfWork:
    async with FakeUnitOfWork(database) as uow:
        await service_layer.authorize_payment(
            uow,
            gateway,
            order_id=event.order_id,
            amount=event.total,
            currency=event.currency,
            token=opener().open(event.sealed_payment_token),
        )
    return uow


async def void(
    database: FakePaymentDatabase, gateway: SandboxGateway, event: OrderCancelled
) -> None:
    async with FakeUnitOfWork(database) as uow:
        await service_layer.void_payment(uow, gateway, order_id=event.order_id)


def test_the_fakes_stand_in_for_the_real_protocols() -> None:
    # mypy checks these assignments: the fakes implement the Protocols.
    repository: PaymentRepository = FakePaymentRepository()
    uow: UnitOfWork = FakeUnitOfWork()

    assert repository is not None
    assert uow.payments is not None


async def test_an_accepted_card_is_authorized_saved_and_announced(
    database: FakePaymentDatabase, sandbox: SandboxGateway
) -> None:
    event = order_created(sealer=sealer(), token="tok_visa", total=Decimal("12.50"))

    uow = await authorize(database, sandbox, event)

    payment = database.payments[event.order_id]
    assert (payment.status, payment.amount, payment.currency) == (
        PaymentStatus.AUTHORIZED,
        Decimal("12.50"),
        "EUR",
    )
    assert payment.authorization_id is not None
    assert payment.authorization_id.startswith("auth_")
    authorized = PaymentAuthorized(
        order_id=event.order_id,
        amount=Decimal("12.50"),
        currency="EUR",
        authorization_id=payment.authorization_id,
    )
    assert uow.emitted == [authorized]
    assert database.outbox == [authorized]
    assert uow.committed


@pytest.mark.parametrize(
    ("token", "total", "reason"),
    [
        ("tok_chargeDeclined", "12.50", "card declined"),
        ("tok_insufficientFunds", "12.50", "insufficient funds"),
        ("tok_visa", "10000.01", "amount exceeds limit"),
    ],
)
async def test_a_declined_card_is_saved_with_its_reason_and_announced(
    database: FakePaymentDatabase, sandbox: SandboxGateway, token: str, total: str, reason: str
) -> None:
    event = order_created(sealer=sealer(), token=token, total=Decimal(total))

    await authorize(database, sandbox, event)

    payment = database.payments[event.order_id]
    assert (payment.status, payment.reason, payment.authorization_id) == (
        PaymentStatus.DECLINED,
        reason,
        None,
    )
    assert database.outbox == [
        PaymentDeclined(order_id=event.order_id, amount=Decimal(total), reason=reason)
    ]


async def test_an_unavailable_gateway_propagates_and_nothing_is_saved(
    database: FakePaymentDatabase, sandbox: SandboxGateway
) -> None:
    event = order_created(sealer=sealer(), token="tok_gatewayTimeout")

    for _ in range(2):
        uow = FakeUnitOfWork(database)
        with pytest.raises(GatewayUnavailable):
            async with uow:
                await service_layer.authorize_payment(
                    uow,
                    sandbox,
                    order_id=event.order_id,
                    amount=event.total,
                    currency=event.currency,
                    token=opener().open(event.sealed_payment_token),
                )
        # Rolled back: no PENDING payment, no event.
        assert uow.rolled_back
        assert uow.emitted == []
        assert database.payments == {}
        assert database.outbox == []

    await authorize(database, sandbox, event)

    assert database.payments[event.order_id].status is PaymentStatus.AUTHORIZED
    assert [type(e) for e in database.outbox] == [PaymentAuthorized]
    assert sandbox.attempts(event.order_id) == 3


async def test_a_cancellation_before_the_order_leaves_a_tombstone_and_charges_nothing(
    database: FakePaymentDatabase, sandbox: SandboxGateway
) -> None:
    created = order_created(sealer=sealer())

    await void(database, sandbox, order_cancelled(created.order_id))

    assert database.payments == {created.order_id: Payment.cancelled_before_order(created.order_id)}
    assert database.outbox == []

    await authorize(database, sandbox, created)

    assert database.payments[created.order_id].status is PaymentStatus.CANCELLED
    assert database.payments[created.order_id].amount is None
    assert sandbox.attempts(created.order_id) == 0
    assert database.outbox == []


async def test_cancelling_an_authorized_order_voids_it_at_the_gateway(
    database: FakePaymentDatabase, sandbox: SandboxGateway
) -> None:
    created = order_created(sealer=sealer(), total=Decimal("40.00"))
    await authorize(database, sandbox, created)

    await void(database, sandbox, order_cancelled(created.order_id))

    payment = database.payments[created.order_id]
    assert payment.status is PaymentStatus.VOIDED
    assert payment.authorization_id is not None
    assert sandbox.is_voided(payment.authorization_id)
    authorized, voided = database.outbox
    assert isinstance(authorized, PaymentAuthorized)
    assert voided == PaymentVoided(order_id=created.order_id, amount=Decimal("40.00"))


async def test_a_failed_void_rolls_back_and_keeps_the_authorization_for_the_retry(
    database: FakePaymentDatabase,
) -> None:
    gateway = VoidFailsOnce()
    created = order_created(sealer=sealer())
    await authorize(database, gateway, created)

    with pytest.raises(GatewayUnavailable):
        await void(database, gateway, order_cancelled(created.order_id))
    assert database.payments[created.order_id].status is PaymentStatus.AUTHORIZED
    assert [type(e) for e in database.outbox] == [PaymentAuthorized]

    await void(database, gateway, order_cancelled(created.order_id))

    assert database.payments[created.order_id].status is PaymentStatus.VOIDED
    assert [type(e) for e in database.outbox] == [PaymentAuthorized, PaymentVoided]


async def test_cancelling_a_declined_payment_does_nothing(
    database: FakePaymentDatabase, sandbox: SandboxGateway
) -> None:
    created = order_created(sealer=sealer(), token="tok_chargeDeclined")
    await authorize(database, sandbox, created)

    await void(database, sandbox, order_cancelled(created.order_id))

    assert database.payments[created.order_id].status is PaymentStatus.DECLINED
    assert [type(e) for e in database.outbox] == [PaymentDeclined]


async def test_the_same_facts_again_change_nothing(
    database: FakePaymentDatabase, sandbox: SandboxGateway
) -> None:
    created = order_created(sealer=sealer())
    cancelled = order_cancelled(created.order_id)

    for _ in range(2):
        await authorize(database, sandbox, created)
    for _ in range(2):
        await void(database, sandbox, cancelled)
    await authorize(database, sandbox, created)

    assert database.payments[created.order_id].status is PaymentStatus.VOIDED
    assert sandbox.attempts(created.order_id) == 1
    assert [type(e) for e in database.outbox] == [PaymentAuthorized, PaymentVoided]


async def test_payment_of_shows_decisions_but_not_tombstones(
    database: FakePaymentDatabase, sandbox: SandboxGateway
) -> None:
    created = order_created(sealer=sealer())
    cancelled_first = uuid4()
    await authorize(database, sandbox, created)
    await void(database, sandbox, order_cancelled(cancelled_first))

    async with FakeUnitOfWork(database) as uow:
        shown = await service_layer.payment_of(uow, created.order_id)
        tombstone = await service_layer.payment_of(uow, cancelled_first)
        unknown = await service_layer.payment_of(uow, uuid4())

    assert shown is not None
    assert shown.status is PaymentStatus.AUTHORIZED
    assert (tombstone, unknown) == (None, None)


async def test_the_handlers_run_the_use_cases_with_their_dependencies(
    database: FakePaymentDatabase, sandbox: SandboxGateway
) -> None:
    dependencies = Dependencies(gateway=sandbox, payment_tokens=opener())
    created = order_created(sealer=sealer(), total=Decimal("7.00"))

    async with FakeUnitOfWork(database) as uow:
        await handlers.on_order_created(created, uow, dependencies)
    assert database.payments[created.order_id].status is PaymentStatus.AUTHORIZED
    assert uow.emitted == database.outbox
    assert sandbox.attempts(created.order_id) == 1

    async with FakeUnitOfWork(database) as uow:
        await handlers.on_order_cancelled(order_cancelled(created.order_id), uow, dependencies)
    assert database.payments[created.order_id].status is PaymentStatus.VOIDED
    assert uow.emitted == [PaymentVoided(order_id=created.order_id, amount=Decimal("7.00"))]


async def test_the_service_routes_each_consumed_event_to_its_handler(
    database: FakePaymentDatabase, sandbox: SandboxGateway
) -> None:
    assert dict(SERVICE.handlers) == {
        OrderCreated: handlers.on_order_created,
        OrderCancelled: handlers.on_order_cancelled,
    }
    created = order_created(sealer=sealer())
    dependencies = Dependencies(gateway=sandbox, payment_tokens=opener())

    for event in (created, order_cancelled(created.order_id)):
        async with FakeUnitOfWork(database) as uow:
            await SERVICE.handlers[type(event)](event, uow, dependencies)

    assert [type(e) for e in database.outbox] == [PaymentAuthorized, PaymentVoided]


# --- no orphaned holds ------------------------------------------------------------


async def test_an_authorization_whose_answer_was_lost_is_returned_again_on_retry(
    database: FakePaymentDatabase, sandbox: SandboxGateway
) -> None:
    created = order_created(sealer=sealer(), token="tok_gatewayTimeoutAfterAuth")
    with pytest.raises(GatewayUnavailable):
        await authorize(database, sandbox, created)
    assert list(sandbox.holds()) == [created.order_id], "the gateway did authorize"
    assert database.payments == {}, "we never saw it: nothing recorded"

    await authorize(database, sandbox, created)  # the retry: same key, same authorization
    payment = database.payments[created.order_id]
    assert payment.status is PaymentStatus.AUTHORIZED
    assert payment.authorization_id == sandbox.holds()[created.order_id]


async def test_a_cancellation_between_a_lost_answer_and_its_retry_leaves_no_hold(
    database: FakePaymentDatabase, sandbox: SandboxGateway
) -> None:
    """Before: the tombstone made the retry skip, and nothing voided the hold."""
    created = order_created(sealer=sealer(), token="tok_gatewayTimeoutAfterAuth")
    with pytest.raises(GatewayUnavailable):
        await authorize(database, sandbox, created)

    await void(database, sandbox, order_cancelled(created.order_id))
    await authorize(database, sandbox, created)  # the retry comes after the cancellation

    assert sandbox.holds() == {}, "the card keeps no hold"
    assert database.payments[created.order_id].status is PaymentStatus.CANCELLED
    assert database.outbox == [], "nothing was ever authorized as far as anyone heard"


async def test_a_release_that_fails_keeps_nothing_and_is_retried(
    database: FakePaymentDatabase,
) -> None:
    class ReleaseFailsOnce(SandboxGateway):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        async def release(self, *, order_id: UUID) -> str | None:
            self.calls += 1
            if self.calls == 1:
                raise GatewayUnavailable("release timed out")
            return await super().release(order_id=order_id)

    gateway = ReleaseFailsOnce()
    created = order_created(sealer=sealer(), token="tok_gatewayTimeoutAfterAuth")
    with pytest.raises(GatewayUnavailable):
        await authorize(database, gateway, created)
    with pytest.raises(GatewayUnavailable):
        await void(database, gateway, order_cancelled(created.order_id))
    assert database.payments == {}, "the tombstone rolled back with the failed release"
    await void(database, gateway, order_cancelled(created.order_id))
    assert gateway.holds() == {}
