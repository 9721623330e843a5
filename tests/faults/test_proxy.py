"""The black-hole proxy itself (harness check: no services, no broker)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.support.faults_proxy import blackhole_proxy

pytestmark = pytest.mark.timeout(30)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
    writer.close()


async def test_blackhole_holds_bytes_without_closing_and_resume_delivers_them() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, blackhole_proxy("127.0.0.1", port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"one")
        assert await asyncio.wait_for(reader.readexactly(3), 2) == b"one"

        proxy.blackhole()
        writer.write(b"two")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(3), 0.5)
        assert not reader.at_eof(), "a black hole closes nothing"

        # A fresh connection is accepted but goes nowhere while black-holed.
        late_reader, late_writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        late_writer.write(b"late")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(late_reader.read(4), 0.5)

        proxy.resume()
        assert await asyncio.wait_for(reader.readexactly(3), 2) == b"two"
        assert await asyncio.wait_for(late_reader.readexactly(4), 2) == b"late"
        assert proxy.accepted == 2

        writer.close()
        late_writer.close()


async def test_a_close_goes_through_the_proxy() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, blackhole_proxy("127.0.0.1", port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"x")
        await reader.readexactly(1)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 2) == b""

        async def gone() -> None:
            while proxy.open_connections:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(gone(), 2)
