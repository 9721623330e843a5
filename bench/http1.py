"""A lean HTTP/1.1 client for the bench's POSTs: kept-alive connections, nothing else.

httpx costs the bench 6 to 8 ms of CPU per request on this machine, more than the
order API itself: offering 1,000 POSTs/s, the client, not the shop, was the
limit. This one writes the request bytes and reads status, headers and a
Content-Length body, about a tenth of that. It speaks only what the shop's
API answers (no chunked bodies, no redirects, no TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


class TransportError(Exception):
    """The connection broke or the answer was not HTTP/1.1 as expected."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Http1Pool:
    """Up to ``size`` kept-alive connections to one ``host:port``; the caller bounds
    how many requests are in flight (the bench's gate)."""

    def __init__(self, host: str, port: int, *, size: int, timeout: float = 120.0) -> None:
        self.host, self.port, self.size, self.timeout = host, port, size, timeout
        self._idle: list[_Connection] = []
        self._open = 0

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{head}\r\n"
        ).encode() + body
        connection = await self._checkout()
        try:
            answer, keep = await asyncio.wait_for(self._exchange(connection, request), self.timeout)
        except (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError) as exc:
            self._discard(connection)
            raise TransportError(repr(exc)) from exc
        except BaseException:
            self._discard(connection)
            raise
        if keep:
            self._idle.append(connection)
        else:
            self._discard(connection)
        return answer

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self._open = 0

    async def _checkout(self) -> _Connection:
        if self._idle:
            return self._idle.pop()
        if self._open >= self.size:
            raise TransportError(f"more than {self.size} requests in flight")
        self._open += 1
        try:
            return await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            self._open -= 1
            raise TransportError(repr(exc)) from exc

    def _discard(self, connection: _Connection) -> None:
        self._open -= 1
        connection[1].close()

    @staticmethod
    async def _exchange(connection: _Connection, request: bytes) -> tuple[Answer, bool]:
        reader, writer = connection
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        version, status, *_ = status_line.split(" ", 2)
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x answer: {status_line!r}")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", ""):
            raise ValueError("chunked answers are not read by this client")
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        keep = headers.get("connection", "").lower() != "close"
        return Answer(int(status), headers, body), keep
