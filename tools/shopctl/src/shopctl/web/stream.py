"""Fan-out to browsers: each gets a bounded buffer of updates, framed as server-sent events.

A browser that reads slower than events arrive must not make the server hold an
ever longer backlog: its buffer keeps the newest ``capacity`` updates, drops the
oldest, and the next read starts with a ``gap`` saying how many were lost (the
page shows it and can ask for a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_CAPACITY = 1000
KEEPALIVE = b": keepalive\n\n"
RECONNECT_HINT_MS = 2000


@dataclass(frozen=True, slots=True)
class Update:
    name: str  # the SSE event name: snapshot, step, depths, status
    data: Any


@dataclass(frozen=True, slots=True)
class Gap:
    dropped: int


class ClientBuffer:
    """One browser's pending updates: at most ``capacity``, oldest dropped first."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._items: deque[Update] = deque()
        self._capacity = capacity
        self._dropped = 0
        self._ready = asyncio.Event()
        self.closed = False
        self.dropped_total = 0

    def put(self, update: Update) -> None:
        if self.closed:
            return
        if len(self._items) >= self._capacity:
            self._items.popleft()
            self._dropped += 1
            self.dropped_total += 1
        self._items.append(update)
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def take(self, timeout: float | None = None) -> list[Update | Gap] | None:
        """Everything pending, a ``Gap`` first if some was dropped; ``[]`` if nothing came
        within ``timeout``; None once closed."""
        if not self._items and not self.closed:
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return []
        if self.closed:
            return None
        taken: list[Update | Gap] = [Gap(self._dropped)] if self._dropped else []
        taken.extend(self._items)
        self._items.clear()
        self._dropped = 0
        self._ready.clear()
        return taken


class Hub:
    """Every browser's buffer; a new one starts with a snapshot of the current state."""

    def __init__(self, snapshot: Callable[[], Update], *, capacity: int = DEFAULT_CAPACITY) -> None:
        self._snapshot = snapshot
        self._capacity = capacity
        self._buffers: set[ClientBuffer] = set()
        self.closed = False

    @property
    def subscribers(self) -> int:
        return len(self._buffers)

    def subscribe(self) -> ClientBuffer:
        buffer = ClientBuffer(self._capacity)
        if self.closed:
            buffer.close()
            return buffer
        # No await between the snapshot and joining: no update falls in between.
        buffer.put(self._snapshot())
        self._buffers.add(buffer)
        return buffer

    def unsubscribe(self, buffer: ClientBuffer) -> None:
        self._buffers.discard(buffer)
        buffer.close()

    def publish(self, update: Update) -> None:
        for buffer in self._buffers:
            buffer.put(update)

    def close(self) -> None:
        """End every stream (shutdown): browsers reconnect to whoever serves next."""
        self.closed = True
        for buffer in list(self._buffers):
            self.unsubscribe(buffer)


def frame(item: Update | Gap) -> bytes:
    """One SSE message; compact JSON has no newline, so one ``data:`` line suffices
    (ASCII-escaped: a lone surrogate from the wire cannot break the encoding)."""
    if isinstance(item, Gap):
        name, data = "gap", {"dropped": item.dropped}
    else:
        name, data = item.name, item.data
    payload = json.dumps(data, separators=(",", ":"))
    return f"event: {name}\ndata: {payload}\n\n".encode()


def reconnect_hint(milliseconds: int = RECONNECT_HINT_MS) -> bytes:
    """How long a browser waits before reconnecting a dropped stream."""
    return f"retry: {milliseconds}\n\n".encode()
