"""Load shapes: open loop at a fixed rate (no coordinated omission) and closed loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bench.stack import Posted, Stack


async def open_loop(
    stack: Stack,
    *,
    rate: float,
    count: int,
    on_posted: Callable[[Posted], None] | None = None,
    stop: asyncio.Event | None = None,
) -> list[Posted]:
    """Offer ``count`` orders at ``rate``/s, each due at its own time.

    A request waits for nothing but the in-flight gate, so a slow shop cannot slow
    the offered load down; each record keeps the time it was *due*, so latency can
    be counted from there (queueing included).
    """
    started = time.monotonic()
    tasks: list[asyncio.Task[Posted]] = []

    async def one(due: float) -> Posted:
        record = await stack.post_order(scheduled=due)
        if on_posted is not None:
            on_posted(record)
        return record

    for i in range(count):
        if stop is not None and stop.is_set():
            break
        due = started + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    return list(await asyncio.gather(*tasks))


@dataclass
class ClosedLoopResult:
    posted: list[Posted] = field(default_factory=list)
    # (wall time the order's last email arrived, seconds from POST sent to then)
    completions: list[tuple[float, float]] = field(default_factory=list)
    timeouts: int = 0
    errors: int = 0


async def closed_loop(
    stack: Stack,
    *,
    clients: int,
    seconds: float,
    completion_timeout: float = 120.0,
    result: ClosedLoopResult | None = None,
) -> ClosedLoopResult:
    """``clients`` users, each placing an order and waiting until both its emails
    arrived before placing the next, for ``seconds``. Fills ``result`` as it goes."""
    result = result if result is not None else ClosedLoopResult()
    stop_at = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < stop_at:
            record = await stack.post_order()
            result.posted.append(record)
            if not record.ok:
                result.errors += 1
                await asyncio.sleep(0.05)
                continue
            assert record.order_id is not None
            try:
                done = await stack.sink.wait_complete(record.order_id, completion_timeout)
            except TimeoutError:
                result.timeouts += 1
                continue
            result.completions.append((done, done - record.sent_wall))

    await asyncio.gather(*(client() for _ in range(clients)))
    return result


def status_times(order: dict[str, object]) -> dict[str, float]:
    """Wall time of each status the order went through, from its history."""
    out: dict[str, float] = {}
    for change in order.get("history") or []:  # type: ignore[attr-defined]
        out.setdefault(change["status"], datetime.fromisoformat(change["at"]).timestamp())
    return out


def post_counts(posted: list[Posted]) -> dict[str, int]:
    """Client-side outcome counts, including load the service shed (503 → retried)."""
    return {
        "posted": len(posted),
        "accepted": sum(1 for p in posted if p.ok),
        "errors": sum(1 for p in posted if not p.ok),
        "shed_first_attempt_503": sum(1 for p in posted if p.first_status == 503),
        "retries": sum(p.attempts - 1 for p in posted),
    }
