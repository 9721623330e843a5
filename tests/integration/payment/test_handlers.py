"""The payment handlers against a real database, one transaction per delivery."""

from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from events import Handler
from events.testing import deliver, outbox_events
from payment_service.adapters.gateway import GatewayUnavailable
from payment_service.adapters.sandbox_gateway import SandboxGateway
from payment_service.dependencies import Dependencies
from payment_service.service import SERVICE
from shop_contract import OrderCancelled, OrderCreated
from shop_contract.testing import order_cancelled, order_created

from tests.integration.payment.support import CONSUMER, Sessions, payment_row, types
from tests.support.tokens import opener, sealer
from tests.unit.payment.fakes import VoidFailsOnce


async def test_an_accepted_card_is_authorized_and_announced(
    sessions: Sessions, on_created: Handler[Any]
) -> None:
    event = order_created(sealer=sealer(), token="tok_visa", total=Decimal("12.50"))

    cause = await deliver(sessions, on_created, event, consumer=CONSUMER)

    assert cause.outcome == "handled"
    row = await payment_row(sessions, event.order_id)
    assert row is not None
    assert row["status"] == "AUTHORIZED"
    assert row["amount"] == Decimal("12.50")
    assert row["currency"] == "EUR"
    assert row["authorization_id"].startswith("auth_")
    [authorized] = await outbox_events(sessions, str(event.order_id))
    assert authorized.type == "payment.authorized"
    assert authorized.causation_id == cause.envelope.id
    assert authorized.data == {
        "order_id": str(event.order_id),
        "amount": "12.50",
        "currency": "EUR",
        "authorization_id": row["authorization_id"],
    }


@pytest.mark.parametrize(
    ("token", "total", "reason"),
    [
        ("tok_chargeDeclined", "12.50", "card declined"),
        ("tok_insufficientFunds", "12.50", "insufficient funds"),
        ("tok_visa", "10000.01", "amount exceeds limit"),
    ],
)
async def test_a_declined_card_is_recorded_with_its_reason(
    sessions: Sessions, on_created: Handler[Any], token: str, total: str, reason: str
) -> None:
    event = order_created(sealer=sealer(), token=token, total=Decimal(total))

    await deliver(sessions, on_created, event, consumer=CONSUMER)

    row = await payment_row(sessions, event.order_id)
    assert row is not None
    assert (row["status"], row["reason"], row["authorization_id"]) == ("DECLINED", reason, None)
    [declined] = await outbox_events(sessions, str(event.order_id))
    assert declined.type == "payment.declined"
    assert declined.data == {"order_id": str(event.order_id), "amount": total, "reason": reason}


async def test_gateway_timeouts_roll_back_and_the_third_attempt_authorizes(
    sessions: Sessions, on_created: Handler[Any], sandbox: SandboxGateway
) -> None:
    event = order_created(sealer=sealer(), token="tok_gatewayTimeout")

    for _ in range(2):
        with pytest.raises(GatewayUnavailable):
            await deliver(sessions, on_created, event, consumer=CONSUMER)
        # Nothing of the failed attempt is left: no PENDING row, no event.
        assert await payment_row(sessions, event.order_id) is None
        assert await outbox_events(sessions, str(event.order_id)) == []
    await deliver(sessions, on_created, event, consumer=CONSUMER)

    row = await payment_row(sessions, event.order_id)
    assert row is not None
    assert row["status"] == "AUTHORIZED"
    assert types(await outbox_events(sessions, str(event.order_id))) == ["payment.authorized"]
    assert sandbox.attempts(event.order_id) == 3


async def test_a_redelivered_envelope_is_a_duplicate_and_charges_once(
    sessions: Sessions, on_created: Handler[Any], sandbox: SandboxGateway
) -> None:
    event = order_created(sealer=sealer())
    first = await deliver(sessions, on_created, event, consumer=CONSUMER)

    again = await deliver(sessions, on_created, event, envelope=first.envelope, consumer=CONSUMER)

    assert (first.outcome, again.outcome) == ("handled", "duplicate")
    assert sandbox.attempts(event.order_id) == 1
    assert types(await outbox_events(sessions, str(event.order_id))) == ["payment.authorized"]


async def test_cancelling_an_authorized_order_voids_it_at_the_gateway(
    sessions: Sessions,
    on_created: Handler[Any],
    on_cancelled: Handler[Any],
    sandbox: SandboxGateway,
) -> None:
    created = order_created(sealer=sealer(), token="tok_visa", total=Decimal("40.00"))
    await deliver(sessions, on_created, created, consumer=CONSUMER)

    await deliver(sessions, on_cancelled, order_cancelled(created.order_id), consumer=CONSUMER)

    row = await payment_row(sessions, created.order_id)
    assert row is not None
    assert row["status"] == "VOIDED"
    assert sandbox.is_voided(row["authorization_id"])
    authorized, voided = await outbox_events(sessions, str(created.order_id))
    assert authorized.type == "payment.authorized"
    assert (voided.type, voided.data["amount"]) == ("payment.voided", "40.00")


async def test_a_cancellation_before_the_order_leaves_a_tombstone_that_blocks_the_charge(
    sessions: Sessions,
    on_created: Handler[Any],
    on_cancelled: Handler[Any],
    sandbox: SandboxGateway,
) -> None:
    created = order_created(sealer=sealer(), token="tok_visa")

    await deliver(sessions, on_cancelled, order_cancelled(created.order_id), consumer=CONSUMER)
    await deliver(sessions, on_created, created, consumer=CONSUMER)

    row = await payment_row(sessions, created.order_id)
    assert row is not None
    assert (row["status"], row["amount"]) == ("CANCELLED", None)
    assert sandbox.attempts(created.order_id) == 0
    assert await outbox_events(sessions, str(created.order_id)) == []


async def test_cancelling_a_declined_payment_does_nothing(
    sessions: Sessions, on_created: Handler[Any], on_cancelled: Handler[Any]
) -> None:
    created = order_created(sealer=sealer(), token="tok_chargeDeclined")
    await deliver(sessions, on_created, created, consumer=CONSUMER)

    await deliver(sessions, on_cancelled, order_cancelled(created.order_id), consumer=CONSUMER)

    row = await payment_row(sessions, created.order_id)
    assert row is not None
    assert row["status"] == "DECLINED"
    assert types(await outbox_events(sessions, str(created.order_id))) == ["payment.declined"]


async def test_duplicate_events_change_nothing(
    sessions: Sessions,
    on_created: Handler[Any],
    on_cancelled: Handler[Any],
    sandbox: SandboxGateway,
) -> None:
    created = order_created(sealer=sealer(), token="tok_visa")
    cancelled = order_cancelled(created.order_id)

    # Distinct deliveries (new event ids) of the same facts: the inbox cannot
    # dedupe them, the payment's status must.
    for _ in range(2):
        await deliver(sessions, on_created, created, consumer=CONSUMER)
    for _ in range(2):
        await deliver(sessions, on_cancelled, cancelled, consumer=CONSUMER)
    await deliver(sessions, on_created, created, consumer=CONSUMER)

    row = await payment_row(sessions, created.order_id)
    assert row is not None
    assert row["status"] == "VOIDED"
    assert sandbox.attempts(created.order_id) == 1
    assert types(await outbox_events(sessions, str(created.order_id))) == [
        "payment.authorized",
        "payment.voided",
    ]


async def test_duplicate_cancellations_before_the_order_keep_one_tombstone(
    sessions: Sessions, on_cancelled: Handler[Any]
) -> None:
    order_id = uuid4()

    for _ in range(2):
        await deliver(sessions, on_cancelled, order_cancelled(order_id), consumer=CONSUMER)

    row = await payment_row(sessions, order_id)
    assert row is not None
    assert row["status"] == "CANCELLED"
    assert await outbox_events(sessions, str(order_id)) == []


async def test_a_failed_void_keeps_the_authorization_for_the_retry(sessions: Sessions) -> None:
    gateway = VoidFailsOnce()
    dependencies = Dependencies(gateway=gateway, payment_tokens=opener())
    on_created = SERVICE.handler_for(OrderCreated, dependencies)
    on_cancelled = SERVICE.handler_for(OrderCancelled, dependencies)
    created = order_created(sealer=sealer(), token="tok_visa")
    await deliver(sessions, on_created, created, consumer=CONSUMER)

    with pytest.raises(GatewayUnavailable):
        await deliver(sessions, on_cancelled, order_cancelled(created.order_id), consumer=CONSUMER)
    row = await payment_row(sessions, created.order_id)
    assert row is not None
    assert row["status"] == "AUTHORIZED"

    await deliver(sessions, on_cancelled, order_cancelled(created.order_id), consumer=CONSUMER)

    row = await payment_row(sessions, created.order_id)
    assert row is not None
    assert row["status"] == "VOIDED"
    assert gateway.is_voided(row["authorization_id"])
    assert types(await outbox_events(sessions, str(created.order_id))) == [
        "payment.authorized",
        "payment.voided",
    ]
