"""A TCP proxy that can black-hole its traffic: the network fault a heartbeat is for.

Put it between the services and RabbitMQ (``AMQP_URL`` pointing at ``proxy.port``).
``blackhole()`` stops moving bytes in both directions *without closing any socket*:
each side sees a silent peer, exactly like a dead link or a dropped route, and only
heartbeats (or timeouts) can tell. ``resume()`` moves the held bytes on, in order,
so a connection that neither side gave up on carries on unharmed; connections that
one side did give up on are closed through. New connections are accepted while
black-holed, and held the same way.

``lose_closes()`` keeps forwarding bytes but no longer passes the server's end of a
connection on: the client got everything the server said before it went, and then
a silent socket, as when the FIN is lost on a dying path. ``server_closed`` is set
once the proxy has seen the server end one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass(eq=False)  # identity-hashed: kept in a set
class _Pair:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()


class BlackholeProxy:
    def __init__(self, *, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = 0
        self.accepted = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._pairs: set[_Pair] = set()
        self._server: asyncio.Server | None = None
        self._closes_lost = False
        self.server_closed = asyncio.Event()

    @property
    def blackholed(self) -> bool:
        return not self._flowing.is_set()

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def blackhole(self) -> None:
        """Stop forwarding; every socket stays open and silent."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def lose_closes(self) -> None:
        """From now on, the server's end of a connection does not reach the client."""
        self._closes_lost = True

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self._flowing.set()
        if self._server is not None:
            self._server.close()
        for pair in list(self._pairs):
            pair.close()
            for task in pair.tasks:
                task.cancel()
        tasks = [task for pair in self._pairs for task in pair.tasks]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pairs.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        pair = _Pair(client=writer)
        self._pairs.add(pair)
        try:
            # Connecting upstream is held too: a black-holed route answers nothing.
            await self._flowing.wait()
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
            pair.upstream = up_writer
            pair.tasks = [
                asyncio.create_task(self._pump(reader, up_writer)),
                asyncio.create_task(self._pump(up_reader, writer)),
            ]
            # When either direction ends, end the other: a close goes through.
            done, _ = await asyncio.wait(pair.tasks, return_when=asyncio.FIRST_COMPLETED)
            if pair.tasks[1] in done:
                self.server_closed.set()
                if self._closes_lost:  # the client keeps a silent socket until it goes
                    await pair.tasks[0]
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            pair.close()
            for task in pair.tasks:
                task.cancel()
            await asyncio.gather(*pair.tasks, return_exceptions=True)
            self._pairs.discard(pair)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                # While black-holed we stop reading: bytes pile up in the kernel's
                # buffers (and the one chunk held here), nothing is lost or reordered.
                await self._flowing.wait()
                data = await reader.read(CHUNK)
                if not data:
                    return
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()


@asynccontextmanager
async def blackhole_proxy(target_host: str, target_port: int) -> AsyncIterator[BlackholeProxy]:
    proxy = BlackholeProxy(target_host=target_host, target_port=target_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
