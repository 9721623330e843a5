"""Fixtures shared by every tier: unique names, real servers, fresh databases.

Nothing is shared between tests: each gets its own database and its own broker
names, so tests can run in any order and leave nothing behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import pytest

from tests.support.accounts import ShopBroker, shop_broker_users

ADMIN_DSN = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
RABBITMQ_API = os.environ.get("TEST_RABBITMQ_API_URL", "http://guest:guest@127.0.0.1:15672/api")


@pytest.fixture
def unique() -> str:
    """A short suffix no other test uses."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def amqp_url() -> str:
    return AMQP_URL


@pytest.fixture
async def vhost_url() -> AsyncIterator[str]:
    """AMQP URL of a fresh, empty vhost: a whole app can run in it, isolated."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=RABBITMQ_API, timeout=10) as api:
        (await api.put(f"/vhosts/{name}")).raise_for_status()
        user = httpx.URL(RABBITMQ_API).username
        permissions = {"configure": ".*", "write": ".*", "read": ".*"}
        (await api.put(f"/permissions/{name}/{user}", json=permissions)).raise_for_status()
        yield f"{AMQP_URL.rstrip('/')}/{name}"
        await api.delete(f"/vhosts/{name}")


BrokerUser = Callable[[str], Awaitable[str]]


@pytest.fixture
async def broker_user(vhost_url: str) -> AsyncIterator[BrokerUser]:
    """Factory: ``await broker_user("t1_greeter")`` → an AMQP URL on this test's vhost,
    logged in as that (new) user, with full access to the vhost. Removed afterwards."""
    created: list[str] = []
    vhost = httpx.URL(vhost_url).path.lstrip("/")
    async with httpx.AsyncClient(base_url=RABBITMQ_API, timeout=10) as api:

        async def create(name: str) -> str:
            user = {"password": name, "tags": ""}
            (await api.put(f"/users/{name}", json=user)).raise_for_status()
            created.append(name)
            permissions = {"configure": ".*", "write": ".*", "read": ".*"}
            (await api.put(f"/permissions/{vhost}/{name}", json=permissions)).raise_for_status()
            return f"amqp://{name}:{name}@{httpx.URL(vhost_url).host}:5672/{vhost}"

        yield create
        for name in created:
            await api.delete(f"/users/{name}")


@pytest.fixture
async def shop_broker(vhost_url: str, unique: str) -> AsyncIterator[ShopBroker]:
    """The four services' own broker users (least privilege) on this test's vhost."""
    async with shop_broker_users(vhost_url, RABBITMQ_API, f"t{unique}_") as broker:
        yield broker


def dsn_for(database: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


NewDatabase = Callable[[str], Awaitable[str]]


@pytest.fixture
async def new_database() -> AsyncIterator[NewDatabase]:
    """Factory: ``await new_database("order")`` → DSN of an empty, unique database."""
    created: list[str] = []

    async def create(prefix: str) -> str:
        name = f"test_{prefix}_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        created.append(name)
        return dsn_for(name)

    yield create

    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


TIERS = ("unit", "integration", "e2e", "faults", "deploy", "cluster", "fuzz", "ui")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, taken from its directory under tests/."""
    for item in items:
        parts = item.path.relative_to(item.config.rootpath / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
