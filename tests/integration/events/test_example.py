"""The README's example service is a real file: shown unchanged, and it works."""

import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
from events import Envelope, create_messaging_tables, declare_exchange, message_for
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from tests.conftest import BrokerUser, NewDatabase
from tests.support.apps import wait_until

LIBRARY = Path(__file__).resolve().parents[3] / "libs" / "events"
EXAMPLE = LIBRARY / "examples" / "replier.py"
sys.path.insert(0, str(EXAMPLE.parent))

from replier import TOPOLOGY, Greeted, replier  # noqa: E402


def test_the_readme_shows_the_example_file_unchanged() -> None:
    readme = (LIBRARY / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert EXAMPLE.read_text() in blocks


@pytest.fixture
async def database(
    new_database: NewDatabase,
) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    dsn = await new_database("example")
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"))
    async with engine.begin() as connection:
        await connection.run_sync(create_messaging_tables)
    yield dsn, async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def test_the_example_service_replies_once_to_each_greeting(
    broker_user: BrokerUser, unique: str, database: tuple[str, async_sessionmaker[AsyncSession]]
) -> None:
    dsn, sessions = database
    prefix = f"t{unique}_"
    greeter, replier_url = (
        await broker_user(f"{prefix}greeter"),
        await broker_user(f"{prefix}replier"),
    )
    connection = await aio_pika.connect(greeter)
    async with connection, replier(replier_url, sessions, dsn, prefix=prefix):
        channel = await connection.channel(publisher_confirms=True)
        exchange = await declare_exchange(channel, TOPOLOGY.exchange)
        replies = await channel.declare_queue(exclusive=True)
        await replies.bind(exchange, "reply.sent")
        await wait_until(lambda: _consuming(channel, TOPOLOGY.queue("replier").name))
        greeting = Envelope.wrap(Greeted(name="Ada"))
        for _ in range(2):  # the same greeting twice: one reply
            message = message_for(greeting, user_id=f"{prefix}greeter")
            await exchange.publish(message, greeting.type, mandatory=True)

        message = await _next(replies, timeout=10)
        reply = json.loads(message.body)
        assert (reply["type"], reply["data"]) == (
            "reply.sent",
            {"name": "Ada", "text": "Hello, Ada!"},
        )
        assert reply["causation_id"] == str(greeting.id)
        assert await _next(replies, timeout=1.5, missing_ok=True) is None


async def _consuming(channel: aio_pika.abc.AbstractChannel, queue: str) -> bool:
    try:
        declared = await channel.declare_queue(queue, passive=True)
    except aio_pika.exceptions.ChannelClosed:
        await channel.reopen()
        return False
    return bool(declared.declaration_result.consumer_count)


async def _next(
    queue: aio_pika.abc.AbstractQueue, *, timeout: float, missing_ok: bool = False
) -> aio_pika.abc.AbstractIncomingMessage | None:
    async with queue.iterator(timeout=timeout) as messages:
        try:
            async for message in messages:
                await message.ack()
                return message
        except TimeoutError:
            if missing_ok:
                return None
            raise
    return None
