"""QUORUM_REPLICAS reaches the broker: a worker declares its quorum queues with that
many initial members (x-quorum-initial-group-size), and without it leaves the
argument out, so the broker's own default applies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from inventory_service.service import SERVICE
from service_kit import ServiceSettings

from tests.conftest import RABBITMQ_API, NewDatabase
from tests.support.accounts import ShopBroker
from tests.support.apps import running_app

GROUP_SIZE = "x-quorum-initial-group-size"


async def declared_arguments(broker: ShopBroker, queue: str) -> dict[str, Any]:
    vhost = httpx.URL(broker.vhost_url).path.lstrip("/")
    async with httpx.AsyncClient(base_url=RABBITMQ_API, timeout=10) as api:
        response = await api.get(f"/queues/{vhost}/{queue}")
        response.raise_for_status()
        return dict(response.json()["arguments"])


async def worker_settings(
    new_database: NewDatabase, broker: ShopBroker, **overrides: Any
) -> ServiceSettings:
    return SERVICE.settings(
        database_url=await new_database("inventory"),
        amqp_url=broker.url("inventory"),
        broker_user_prefix=broker.prefix,
        **overrides,
    )


@pytest.mark.timeout(60)
async def test_worker_declares_its_quorum_queues_with_the_replicas_asked_for(
    new_database: NewDatabase, shop_broker: ShopBroker
) -> None:
    settings = await worker_settings(new_database, shop_broker, quorum_replicas=1)
    queue = SERVICE.topology.queue(SERVICE.name)
    async with running_app(SERVICE, settings, role="worker"):
        main = await declared_arguments(shop_broker, queue.name)
        retry = await declared_arguments(shop_broker, queue.retry_queue(1))
        dead = await declared_arguments(shop_broker, queue.dead_letter_queue)
    assert (main["x-queue-type"], main[GROUP_SIZE]) == ("quorum", 1)
    assert (retry["x-queue-type"], retry[GROUP_SIZE]) == ("quorum", 1)
    assert GROUP_SIZE not in dead  # the classic DLQ has no quorum members


@pytest.mark.timeout(60)
async def test_worker_without_quorum_replicas_leaves_the_count_to_the_broker(
    new_database: NewDatabase, shop_broker: ShopBroker
) -> None:
    settings = await worker_settings(new_database, shop_broker)
    assert settings.quorum_replicas is None
    async with running_app(SERVICE, settings, role="worker"):
        main = await declared_arguments(shop_broker, SERVICE.topology.queue(SERVICE.name).name)
    assert main["x-queue-type"] == "quorum"
    assert GROUP_SIZE not in main
