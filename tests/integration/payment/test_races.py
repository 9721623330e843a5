"""Concurrent deliveries for one order, each in its own transaction, as several
consumer workers (or service replicas) would run them."""

import asyncio
import random
from typing import Any
from uuid import UUID

from events import Envelope, Handler, transaction
from events.testing import deliver, outbox_events
from payment_service.adapters.sandbox_gateway import SandboxGateway
from payment_service.dependencies import Dependencies
from payment_service.service import SERVICE
from shop_contract import OrderCancelled, OrderCreated
from shop_contract.testing import order_cancelled, order_created
from sqlalchemy import text

from tests.integration.payment.support import (
    CONSUMER,
    Sessions,
    SlowGateway,
    payment_row,
    types,
)
from tests.support.apps import wait_until
from tests.support.tokens import opener, sealer


def handlers(gateway: SlowGateway) -> tuple[Handler[Any], Handler[Any]]:
    """The order.created and order.cancelled handlers, running on ``gateway``."""
    dependencies = Dependencies(gateway=gateway, payment_tokens=opener())
    return (
        SERVICE.handler_for(OrderCreated, dependencies),
        SERVICE.handler_for(OrderCancelled, dependencies),
    )


async def assert_never_left_authorized(
    sessions: Sessions, sandbox: SandboxGateway, order_id: UUID
) -> str:
    """A cancelled order ends either never charged or charged and voided."""
    row = await payment_row(sessions, order_id)
    assert row is not None
    events = types(await outbox_events(sessions, str(order_id)))
    if row["status"] == "CANCELLED":
        assert events == []
    else:
        assert row["status"] == "VOIDED", row
        assert events == ["payment.authorized", "payment.voided"]
        assert sandbox.is_voided(row["authorization_id"])
    return str(row["status"])


async def test_cancellation_during_authorization_waits_and_voids(
    sessions: Sessions, sandbox: SandboxGateway
) -> None:
    gateway = SlowGateway(sandbox, delay=0.3)
    on_created, on_cancelled = handlers(gateway)
    created = order_created(sealer=sealer())

    authorizing = asyncio.create_task(deliver(sessions, on_created, created, consumer=CONSUMER))
    await gateway.authorizing.wait()  # order.created holds its uncommitted PENDING row
    await deliver(sessions, on_cancelled, order_cancelled(created.order_id), consumer=CONSUMER)
    await authorizing

    assert await assert_never_left_authorized(sessions, sandbox, created.order_id) == "VOIDED"


async def test_order_created_waits_for_an_uncommitted_tombstone_and_charges_nothing(
    sessions: Sessions,
    sandbox: SandboxGateway,
    on_created: Handler[Any],
    on_cancelled: Handler[Any],
) -> None:
    created = order_created(sealer=sealer())
    cancelled = order_cancelled(created.order_id)

    async with transaction(sessions, caused_by=Envelope.wrap(cancelled)) as tx:
        await on_cancelled(cancelled, tx)
        charging = asyncio.create_task(deliver(sessions, on_created, created, consumer=CONSUMER))
        # Commit the tombstone only once order.created is blocked on it.
        await wait_until(lambda: _lock_waiters(sessions))
    await charging

    assert sandbox.attempts(created.order_id) == 0
    assert await assert_never_left_authorized(sessions, sandbox, created.order_id) == "CANCELLED"


async def test_racing_created_and_cancelled_never_leave_a_cancelled_order_authorized(
    sessions: Sessions, sandbox: SandboxGateway
) -> None:
    on_created, on_cancelled = handlers(SlowGateway(sandbox, delay=0.02))
    orders = [order_created(sealer=sealer()) for _ in range(30)]

    async def race(created: OrderCreated) -> None:
        deliveries = [
            deliver(sessions, on_created, created, consumer=CONSUMER),
            deliver(sessions, on_cancelled, order_cancelled(created.order_id), consumer=CONSUMER),
        ]
        random.shuffle(deliveries)
        await asyncio.gather(*deliveries)

    await asyncio.gather(*(race(created) for created in orders))

    for created in orders:
        await assert_never_left_authorized(sessions, sandbox, created.order_id)


async def test_concurrent_duplicates_of_order_created_charge_once(
    sessions: Sessions, sandbox: SandboxGateway
) -> None:
    on_created, _ = handlers(SlowGateway(sandbox, delay=0.1))
    created = order_created(sealer=sealer())

    await asyncio.gather(
        *(deliver(sessions, on_created, created, consumer=CONSUMER) for _ in range(5))
    )

    assert sandbox.attempts(created.order_id) == 1
    assert types(await outbox_events(sessions, str(created.order_id))) == ["payment.authorized"]


async def test_concurrent_duplicates_of_order_cancelled_void_once(
    sessions: Sessions, sandbox: SandboxGateway
) -> None:
    on_created, on_cancelled = handlers(SlowGateway(sandbox, delay=0.1))
    created = order_created(sealer=sealer())
    await deliver(sessions, on_created, created, consumer=CONSUMER)

    await asyncio.gather(
        *(
            deliver(sessions, on_cancelled, order_cancelled(created.order_id), consumer=CONSUMER)
            for _ in range(5)
        )
    )

    assert types(await outbox_events(sessions, str(created.order_id))) == [
        "payment.authorized",
        "payment.voided",
    ]


async def _lock_waiters(sessions: Sessions) -> bool:
    async with sessions() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return bool(waiting)
