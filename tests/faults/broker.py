"""Broker-side fault injection and inspection, always undone in ``finally``.

The node-wide faults (app restart, resource alarm) disturb everyone using the
broker, so each is a context manager that keeps its window short and restores
the node even when the test body fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
from events import ConsumerQueue
from shop_contract import SHOP

RABBITMQCTL_TIMEOUT = 60.0
DEFAULT_WATERMARK = "0.4"


class RabbitmqctlError(AssertionError):
    pass


async def rabbitmqctl(*args: str, timeout: float = RABBITMQCTL_TIMEOUT) -> str:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RabbitmqctlError(f"rabbitmqctl {' '.join(args)}: no answer in {timeout}s") from None
    text = out.decode(errors="replace")
    if process.returncode != 0:
        raise RabbitmqctlError(f"rabbitmqctl {' '.join(args)} failed:\n{text}")
    return text


_watermark: str | None = None


async def current_watermark() -> str:
    """The node's relative memory watermark as configured (read once: each
    rabbitmqctl call costs seconds, and only these tests change it)."""
    global _watermark
    if _watermark is not None:
        return _watermark
    out = await rabbitmqctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().")
    value = out.strip()
    # An absolute setting reads back as {absolute, N}; only relative ones are restored as is.
    try:
        float(value)
    except ValueError:
        value = DEFAULT_WATERMARK
    if float(value) > 0:  # never "restore" a leftover alarm
        _watermark = value
    return value if float(value) > 0 else DEFAULT_WATERMARK


@asynccontextmanager
async def memory_alarm() -> AsyncIterator[None]:
    """Raise the node's memory alarm: every publishing connection is blocked."""
    previous = await current_watermark()
    try:
        await rabbitmqctl("set_vm_memory_high_watermark", "0")
        yield
    finally:
        await rabbitmqctl("set_vm_memory_high_watermark", previous)


@asynccontextmanager
async def app_stopped() -> AsyncIterator[None]:
    """``stop_app`` for the duration of the block, ``start_app`` after, whatever happens."""
    try:
        await rabbitmqctl("stop_app")
        yield
    finally:
        await rabbitmqctl("start_app")
        await rabbitmqctl("await_startup", "--timeout", "60")


async def close_vhost_connections(vhost: str, why: str = "fault test") -> None:
    """Force-close every client connection of ``vhost`` (only this test's system)."""
    await rabbitmqctl("close_all_connections", "--vhost", vhost, why)


def vhost_of(amqp_url: str) -> str:
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def shop_queues() -> list[str]:
    """Every queue the shop declares: service queues, their retry queues and DLQs."""
    names: list[str] = []
    for queue in _consumer_queues():
        names.append(queue.name)
        names.extend(_retry_queues_of(queue))
        names.append(queue.dead_letter_queue)
    return names


def retry_queues() -> list[str]:
    return [name for queue in _consumer_queues() for name in _retry_queues_of(queue)]


def _consumer_queues() -> list[ConsumerQueue]:
    return [SHOP.queue(spec.name) for spec in SHOP.consumers]


def _retry_queues_of(queue: ConsumerQueue) -> list[str]:
    return [queue.retry_queue(n) for n in range(1, queue.max_retries + 1)]


def dead_letter_queues() -> list[str]:
    return [queue.dead_letter_queue for queue in _consumer_queues()]


async def queue_depths(amqp_url: str, names: Iterable[str]) -> dict[str, int]:
    """Ready messages per queue, exact and current (passive declare, not management stats)."""
    depths: dict[str, int] = {}
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        for name in names:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                depths[name] = int(queue.declaration_result.message_count or 0)
            except aio_pika.exceptions.ChannelClosed:
                depths[name] = 0  # never declared: nothing in it
            finally:
                if not channel.is_closed:
                    await channel.close()
    return depths


async def peek_dead_letters(amqp_url: str, queue: str) -> list[dict[str, Any]]:
    """Read every message of a DLQ and put them all back (nack + requeue at the end)."""
    connection = await aio_pika.connect(amqp_url, timeout=10)
    seen: list[dict[str, Any]] = []
    async with connection:
        channel = await connection.channel()
        q = await channel.declare_queue(queue, passive=True)
        held = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = await q.get(no_ack=False, fail=False, timeout=5)
            if message is None:
                break
            held.append(message)
            seen.append(
                {
                    "message_id": message.message_id,
                    "type": message.type,
                    "body": message.body,
                    "headers": dict(message.headers or {}),
                }
            )
        for message in held:
            await message.nack(requeue=True)
    return seen


async def publish_raw(
    amqp_url: str,
    *,
    routing_key: str,
    body: bytes,
    message_id: str,
    type_: str | None = None,
    headers: dict[str, Any] | None = None,
    user_id: str | None = None,
) -> None:
    """Publish one message to ``events`` exactly as given (confirmed, mandatory)."""
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("events", ensure=False)
        await exchange.publish(
            aio_pika.Message(
                body=body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message_id,
                correlation_id=message_id,
                type=type_ or routing_key,
                headers=headers or {},
                user_id=user_id,
            ),
            routing_key,
            mandatory=True,
            timeout=10,
        )
