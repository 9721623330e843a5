"""GET /payments/{order_id} on the real app (real lifespan, database and broker)."""

from collections.abc import AsyncIterator
from decimal import Decimal
from uuid import uuid4

import httpx
import pytest
from events.testing import deliver
from fastapi import FastAPI
from payment_service.adapters.gateway import TimeLimitedGateway
from payment_service.dependencies import Dependencies
from payment_service.service import SERVICE
from service_kit import Runtime
from shop_contract import OrderCancelled, OrderCreated
from shop_contract.testing import order_cancelled, order_created

from tests.conftest import NewDatabase
from tests.integration.payment.support import CONSUMER
from tests.support.apps import running_app
from tests.support.tokens import sealer


@pytest.fixture
async def app(
    new_database: NewDatabase, vhost_url: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = SERVICE.settings(
        database_url=await new_database("payment"), amqp_url=vhost_url, migrate_on_start=False
    )
    async with running_app(SERVICE, settings) as running:
        yield running


async def settle(runtime: Runtime[Dependencies], *events: OrderCreated | OrderCancelled) -> None:
    """Deliver events through the app's own handlers, gateway and database."""
    for event in events:
        handler = SERVICE.handler_for(type(event), runtime.dependencies)
        delivery = await deliver(runtime.database.sessions, handler, event, consumer=CONSUMER)
        assert delivery.outcome == "handled"


async def test_the_app_hands_its_handlers_a_gateway_with_a_deadline(
    app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    fastapi_app, _ = app
    dependencies = fastapi_app.state.runtime.dependencies

    assert isinstance(dependencies, Dependencies)
    assert isinstance(dependencies.gateway, TimeLimitedGateway)


async def test_payments_are_shown_by_status(app: tuple[FastAPI, httpx.AsyncClient]) -> None:
    fastapi_app, client = app
    authorized = order_created(sealer=sealer(), token="tok_visa", total=Decimal("12.50"))
    declined = order_created(sealer=sealer(), token="tok_insufficientFunds", total=Decimal("7.00"))
    voided = order_created(sealer=sealer(), token="tok_visa", total=Decimal("3.10"))
    await settle(
        fastapi_app.state.runtime,
        authorized,
        declined,
        voided,
        order_cancelled(voided.order_id),
    )

    answers = [
        await client.get(f"/payments/{event.order_id}") for event in (authorized, declined, voided)
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [answer.json() for answer in answers] == [
        {"order_id": str(authorized.order_id), "status": "AUTHORIZED", "amount": "12.50"},
        {
            "order_id": str(declined.order_id),
            "status": "DECLINED",
            "amount": "7.00",
            "reason": "insufficient funds",
        },
        {"order_id": str(voided.order_id), "status": "VOIDED", "amount": "3.10"},
    ]


async def test_unknown_and_tombstoned_orders_are_not_found(
    app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    fastapi_app, client = app
    cancelled_first = uuid4()
    await settle(fastapi_app.state.runtime, order_cancelled(cancelled_first))

    for order_id in (uuid4(), cancelled_first):
        answer = await client.get(f"/payments/{order_id}")
        assert answer.status_code == 404
        assert answer.json() == {"detail": f"no payment for order {order_id}"}


async def test_a_malformed_order_id_is_rejected_naming_it(
    app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = app

    answer = await client.get("/payments/not-a-uuid")

    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == ["path", "order_id"]


async def test_authorization_outcomes_are_counted(app: tuple[FastAPI, httpx.AsyncClient]) -> None:
    fastapi_app, client = app

    def authorized_count(metrics: str) -> float:
        for line in metrics.splitlines():
            if line.startswith('payment_authorizations_total{outcome="authorized"}'):
                return float(line.split()[-1])
        return 0.0

    before = authorized_count((await client.get("/metrics")).text)
    await settle(fastapi_app.state.runtime, order_created(sealer=sealer(), token="tok_visa"))

    assert authorized_count((await client.get("/metrics")).text) == before + 1
