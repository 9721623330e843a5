"""A supervised AMQP connection that comes back after broker restarts.

aio-pika's robust connection restores consumers itself, but has open issues around
re-registering them; here the rule is explicit and testable instead: whenever the
connection is lost, reconnect with capped backoff and run every registered
``on_connect`` callback again on the new connection (they declare topology, open
channels and start consuming).

A cluster is given as several URLs (comma-separated): each attempt tries the
next node, so a service moves to a surviving node when its own goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import unquote, urlsplit

import aio_pika
import structlog
from aio_pika.abc import AbstractConnection

log = structlog.get_logger("events.broker")

OnConnect = Callable[[AbstractConnection], Awaitable[None]]

DEFAULT_HEARTBEAT = 15  # seconds; a black-holed broker is noticed within ~2 heartbeats
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_BACKOFF = 10.0


class Broker:
    def __init__(
        self,
        url: str | Sequence[str],
        *,
        name: str,
        heartbeat: int = DEFAULT_HEARTBEAT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
    ) -> None:
        self._urls = split_urls(url)
        self._next = 0
        self._name = name
        self._heartbeat = heartbeat
        self._connect_timeout = connect_timeout
        self._max_backoff = max_backoff
        self._callbacks: list[OnConnect] = []
        self._connection: AbstractConnection | None = None
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def user(self) -> str | None:
        """The broker user this connection logs in as (every URL names the same one)."""
        username = urlsplit(self._urls[0]).username
        return unquote(username) if username else None

    def on_connect(self, callback: OnConnect) -> None:
        """Run ``callback`` on every new connection (and now, if connected)."""
        self._callbacks.append(callback)

    @property
    def is_ready(self) -> bool:
        connection = self._connection
        return self._ready.is_set() and connection is not None and connection.connected.is_set()

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def connection(self) -> AbstractConnection:
        await self._ready.wait()
        assert self._connection is not None
        return self._connection

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"broker:{self._name}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def reconnect(self) -> None:
        """Drop the current connection; the supervisor builds everything again."""
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()

    async def _supervise(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            url = self._urls[self._next % len(self._urls)]
            self._next += 1
            try:
                connection = await aio_pika.connect(
                    url,
                    timeout=self._connect_timeout,
                    heartbeat=self._heartbeat,
                    client_properties={"connection_name": self._name},
                )
            except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
                log.warning(
                    "broker.connect_failed", node=_node(url), error=repr(exc), retry_in=backoff
                )
                # Several nodes: try the next one at once, back off after a full round.
                if self._next % len(self._urls) == 0:
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                continue

            self._connection = connection
            # A remote close (broker restart, forced close, missed heartbeats) only
            # fires close_callbacks; connection.closed() waits for a local close().
            lost = asyncio.Event()
            connection.close_callbacks.add(_setter(lost))
            try:
                for callback in self._callbacks:
                    await callback(connection)
            except Exception as exc:
                log.exception("broker.setup_failed", error=repr(exc))
                await connection.close()
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue

            backoff = 0.5
            self._ready.set()
            log.info("broker.connected", connection=self._name, node=_node(url))
            await _first(lost.wait(), self._stopping.wait())
            self._ready.clear()
            if not self._stopping.is_set():
                log.warning("broker.connection_lost", connection=self._name)
            with contextlib.suppress(Exception):
                await connection.close()
        self._connection = None
        log.info("broker.stopped", connection=self._name)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def _setter(event: asyncio.Event) -> Callable[..., None]:
    def set_event(*_: object) -> None:
        event.set()

    return set_event


async def _first(*awaitables: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def split_urls(url: str | Sequence[str]) -> tuple[str, ...]:
    """``"amqp://a/,amqp://b/"`` or a list of URLs → a tuple of URLs."""
    parts = url.split(",") if isinstance(url, str) else list(url)
    urls = tuple(part.strip() for part in parts if part.strip())
    if not urls:
        raise ValueError("no broker URL given")
    return urls


def _node(url: str) -> str:
    """Host and port only: never log the password in a URL."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5672}"
