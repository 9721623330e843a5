"""The real app (lifespan, database, broker): GET/PUT /stock and the event wiring."""

from collections.abc import AsyncIterator

import aio_pika
import httpx
import pytest
from events import declare_exchange
from inventory_service.service import SERVICE
from shop_contract.testing import line, order_created

from tests.conftest import NewDatabase
from tests.support.accounts import ShopBroker, publish_as_owner
from tests.support.apps import running_app


@pytest.fixture
async def client(
    new_database: NewDatabase, shop_broker: ShopBroker
) -> AsyncIterator[httpx.AsyncClient]:
    settings = SERVICE.settings(
        database_url=await new_database("inventory"),
        amqp_url=shop_broker.url("inventory"),
        broker_user_prefix=shop_broker.prefix,
        migrate_on_start=False,
    )
    async with running_app(SERVICE, settings) as (_, client):
        yield client


async def test_seeded_sku_is_readable(client: httpx.AsyncClient) -> None:
    response = await client.get("/stock/KEYBOARD-01")

    assert response.status_code == 200
    assert response.json() == {"sku": "KEYBOARD-01", "available": 100, "reserved": 0}


async def test_unknown_sku_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/stock/NOPE-1")

    assert response.status_code == 404
    assert "NOPE-1" in response.json()["detail"]


async def test_put_creates_a_new_sku_then_updates_it(client: httpx.AsyncClient) -> None:
    first = await client.put("/stock/CABLE-2M", json={"available": 7})
    second = await client.put("/stock/CABLE-2M", json={"available": 3})

    assert first.status_code == 200
    assert first.json() == {"sku": "CABLE-2M", "available": 7, "reserved": 0}
    assert second.json() == {"sku": "CABLE-2M", "available": 3, "reserved": 0}
    assert (await client.get("/stock/CABLE-2M")).json() == second.json()


@pytest.mark.parametrize(
    ("body", "bad_field"),
    [
        ({"available": -1}, "available"),
        ({"available": 1_000_001}, "available"),
        ({"available": "5"}, "available"),
        ({"available": 2.5}, "available"),
        ({}, "available"),
        ({"available": 1, "reserved": 0}, "reserved"),
    ],
)
async def test_put_rejects_bad_bodies_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], bad_field: str
) -> None:
    response = await client.put("/stock/MOUSE-01", json=body)

    assert response.status_code == 422
    assert bad_field in {str(part) for error in response.json()["detail"] for part in error["loc"]}
    assert (await client.get("/stock/MOUSE-01")).json()["available"] == 100


@pytest.mark.parametrize("sku", ["a" * 65, "bad sku", "semi;colon", "ünïcode"])
async def test_malformed_sku_is_422(client: httpx.AsyncClient, sku: str) -> None:
    for response in (
        await client.get(f"/stock/{sku}"),
        await client.put(f"/stock/{sku}", json={"available": 1}),
    ):
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["path", "sku"]


async def test_longest_allowed_sku_is_accepted(client: httpx.AsyncClient) -> None:
    sku = "A._-9" + "x" * 59

    response = await client.put(f"/stock/{sku}", json={"available": 0})

    assert response.status_code == 200
    assert response.json()["sku"] == sku


async def test_order_created_on_the_broker_reserves_and_publishes(
    client: httpx.AsyncClient, shop_broker: ShopBroker
) -> None:
    order = order_created(items=[line("USB-C-HUB", 4)])
    connection = await aio_pika.connect(shop_broker.vhost_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await declare_exchange(channel)
        outcomes = await channel.declare_queue(exclusive=True)
        await outcomes.bind(exchange, routing_key="inventory.*")

        [envelope] = await publish_as_owner(shop_broker, order)

        async with outcomes.iterator(timeout=15) as messages:
            message = await anext(messages)
            await message.ack()
    assert message.type == "inventory.reserved"
    assert message.correlation_id == str(order.order_id)
    assert (message.headers or {})["x-causation-id"] == str(envelope.id)
    assert (await client.get("/stock/USB-C-HUB")).json() == {
        "sku": "USB-C-HUB",
        "available": 96,
        "reserved": 4,
    }
    metrics = (await client.get("/metrics")).text
    assert 'inventory_reservations_total{outcome="reserved"}' in metrics
