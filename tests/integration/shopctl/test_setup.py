"""setup against the real broker and database, then proof of least privilege.

Names are unique per test: a fresh vhost, and a prefix on users, roles and
databases (``t<unique>_shop_payment``); everything is removed afterwards.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from urllib.parse import quote

import aio_pika
import asyncpg
import httpx
import pytest
from aiormq.exceptions import ChannelAccessRefused
from events import declare_exchange, declare_queue
from shop_contract import SHOP
from shopctl.cli import app
from shopctl.setup import policy
from shopctl.setup.definitions import definitions
from shopctl.setup.passwords import scram_sha256_verifier
from shopctl.setup.postgres import apply_databases
from shopctl.setup.rabbitmq import ManagementApi, apply_broker
from typer.testing import CliRunner

from tests.conftest import ADMIN_DSN, AMQP_URL, RABBITMQ_API, dsn_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def prefix(unique: str) -> str:
    return f"t{unique}_"


@pytest.fixture
def vhost(vhost_url: str) -> str:
    return vhost_url.rsplit("/", 1)[1]


@pytest.fixture
async def broker_users(prefix: str) -> AsyncIterator[list[policy.BrokerUser]]:
    users = policy.broker_users(prefix=prefix)
    yield users
    async with ManagementApi(RABBITMQ_API) as api:
        for user in users:
            await api.delete(f"/users/{user.name}")


@pytest.fixture
async def service_databases(prefix: str) -> AsyncIterator[list[policy.ServiceDatabase]]:
    databases = policy.service_databases(prefix=prefix)
    yield databases
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        for database in databases:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database.database}" WITH (FORCE)')
            await admin.execute(f'DROP ROLE IF EXISTS "{database.role}"')
    finally:
        await admin.close()


def amqp_url_as(user: str, password: str, vhost: str) -> str:
    base = AMQP_URL.split("@", 1)[1].split("/", 1)[0]
    return (
        f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{base}/{quote(vhost, safe='')}"
    )


def by_service(users: list[policy.BrokerUser]) -> dict[str, policy.BrokerUser]:
    return {user.service: user for user in users}


async def test_broker_setup_is_least_privilege_and_idempotent(
    vhost: str, broker_users: list[policy.BrokerUser]
) -> None:
    async with ManagementApi(RABBITMQ_API) as api:
        await apply_broker(api, broker_users, {}, vhost=vhost)
        environ = {"PAYMENT_AMQP_PASSWORD": "pay-2"}
        done = await apply_broker(api, broker_users, environ, vhost=vhost)  # again: no error
    assert any("user t" in line for line in done)
    users = by_service(broker_users)

    # Every service can declare and bind its real topology with its own account.
    for service, user in users.items():
        password = "pay-2" if service == "payment" else user.default_password
        connection = await aio_pika.connect(amqp_url_as(user.name, password, vhost))
        async with connection:
            channel = await connection.channel()
            await declare_queue(channel, SHOP.queue(service))

    # The password was updated by the second run.
    with pytest.raises(aio_pika.exceptions.ProbableAuthenticationError):
        await aio_pika.connect(amqp_url_as(users["payment"].name, "shop_payment", vhost))

    payment_url = amqp_url_as(users["payment"].name, "pay-2", vhost)
    connection = await aio_pika.connect(payment_url)
    async with connection:
        # consuming another service's queue: refused
        channel = await connection.channel()
        queue = await channel.get_queue("inventory.events", ensure=False)
        with pytest.raises(ChannelAccessRefused):
            await queue.get(fail=False)

        # publishing another service's event: refused (topic permission)
        channel = await connection.channel(publisher_confirms=True)
        events = await channel.get_exchange("events", ensure=False)
        with pytest.raises(ChannelAccessRefused, match=r"inventory\.reserved"):
            await events.publish(aio_pika.Message(b"{}"), "inventory.reserved", timeout=10)

        # binding to an event it does not consume: refused (topic read)
        channel = await connection.channel()
        queue = await channel.get_queue("payment.events", ensure=False)
        with pytest.raises(ChannelAccessRefused):
            await queue.bind("events", routing_key="inventory.reserved")

        # its own events: confirmed and routed to the order service's queue
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        events = await channel.get_exchange("events", ensure=False)
        await events.publish(
            aio_pika.Message(b"{}"), "payment.authorized", mandatory=True, timeout=10
        )

    admin = await aio_pika.connect(f"{AMQP_URL.rstrip('/')}/{vhost}")
    async with admin:
        channel = await admin.channel()
        order_queue = await channel.declare_queue("order.events", passive=True)
        assert order_queue.declaration_result.message_count == 1


async def test_database_setup_isolates_each_service_and_is_idempotent(
    service_databases: list[policy.ServiceDatabase],
) -> None:
    await apply_databases(ADMIN_DSN, service_databases, {})
    await apply_databases(ADMIN_DSN, service_databases, {"ORDER_DB_PASSWORD": "order-2"})
    databases = {d.service: d for d in service_databases}
    order, inventory = databases["order"], databases["inventory"]

    own = await asyncpg.connect(dsn_for(order.database).replace("postgres@", f"{order.role}@"))
    try:
        await own.execute("CREATE TABLE orders (id int PRIMARY KEY)")  # owns public schema use
        await own.execute("INSERT INTO orders VALUES (1)")
    finally:
        await own.close()

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="CONNECT"):
        await asyncpg.connect(dsn_for(inventory.database).replace("postgres@", f"{order.role}@"))

    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        role = await admin.fetchrow(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolpassword"
            " FROM pg_authid WHERE rolname = $1",
            order.role,
        )
        owner = await admin.fetchval(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", order.database
        )
    finally:
        await admin.close()
    assert owner == order.role
    assert (role["rolsuper"], role["rolcreatedb"], role["rolcreaterole"]) == (False, False, False)
    assert role["rolcanlogin"]
    # The stored verifier is the one for the new password, computed here, not by the server.
    stored: str = role["rolpassword"]
    iterations, salt = stored.split("$")[1].split(":")
    assert stored == scram_sha256_verifier(
        "order-2", salt=base64.b64decode(salt), iterations=int(iterations)
    )


async def test_definitions_load_into_rabbitmq_and_grant_the_same_access(
    vhost: str, broker_users: list[policy.BrokerUser]
) -> None:
    document = definitions(broker_users, {"EMAIL_AMQP_PASSWORD": "mail-pw"}, vhost=vhost)
    async with httpx.AsyncClient(base_url=RABBITMQ_API, timeout=10) as api:
        (await api.post("/definitions", json=document)).raise_for_status()

    email = by_service(broker_users)["email"]
    connection = await aio_pika.connect(amqp_url_as(email.name, "mail-pw", vhost))
    async with connection:
        channel = await connection.channel()
        await declare_queue(channel, SHOP.queue("email"))
        channel = await connection.channel(publisher_confirms=True)
        events = await declare_exchange(channel)
        await events.publish(aio_pika.Message(b"{}"), "email.sent", timeout=10)
        with pytest.raises(ChannelAccessRefused, match=r"order\.confirmed"):
            await events.publish(aio_pika.Message(b"{}"), "order.confirmed", timeout=10)


def test_the_setup_command_runs_twice(
    vhost: str,
    prefix: str,
    broker_users: list[policy.BrokerUser],
    service_databases: list[policy.ServiceDatabase],
    restore_logging: None,
) -> None:
    env = {"SETUP_RABBITMQ_API_URL": RABBITMQ_API, "SETUP_POSTGRES_URL": ADMIN_DSN}
    args = ["setup", "--vhost", vhost, "--prefix", prefix]
    for _ in range(2):
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
    assert f"user {prefix}shop_payment" in result.stdout
    assert f"database {prefix}shop_email exists" in result.stdout
