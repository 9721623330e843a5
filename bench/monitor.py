"""Samples the running shop every ``interval`` seconds while a scenario runs.

Each sample: time since the scenario started, ready messages per queue (AMQP
passive declare, exact), the management API's view of the same queues (it lags
by up to ``collect_statistics_interval``, 5 s by default), CPU per process group
in cores, resident memory per service process, and the client-side counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.infra import RabbitApi
from bench.stack import QUEUES, Stack

# CPU groups that are the shop or the bench (the rest of the machine is "other").
OURS = (
    "order",
    "inventory",
    "payment",
    "email",
    "postgres",
    "rabbitmq",
    "bench client",
    "smtp sink",
)
# The order service's processes where it runs split: parts of "order" above, so
# never added to it again.
ORDER_PARTS = ("order-api", "order-worker")
SHOP_SERVICES = ("order", "inventory", "payment", "email")
# The order in which tables list the groups.
DISPLAY = ("order", *ORDER_PARTS, *OURS[1:])


@dataclass
class Monitor:
    stack: Stack
    api: RabbitApi
    interval: float = 0.5
    counters: Callable[[], dict[str, float]] | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _mgmt: dict[str, dict[str, int]] = field(default_factory=dict)
    _stopping: bool = False

    async def __aenter__(self) -> Monitor:
        self.started = time.monotonic()
        self.stack.cpu.reset()
        self._stopping = False
        self._tasks = [asyncio.create_task(self._sample()), asyncio.create_task(self._poll_mgmt())]
        return self

    async def __aexit__(self, *_: object) -> None:
        # A flag as well as cancel(): on Python 3.11, asyncio.wait_for (inside the
        # AMQP, HTTP and PostgreSQL clients) can swallow a cancellation that races
        # with its result, and a sampling loop that missed its cancel would run on,
        # and keep this exit waiting, forever. Never swallow our own cancellation.
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.wait(self._tasks, timeout=30)
        for task in self._tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: a failed sampler is not an error of the run

    def now(self) -> float:
        return time.monotonic() - self.started

    async def _poll_mgmt(self) -> None:
        while not self._stopping:
            with contextlib.suppress(Exception):
                self._mgmt = await self.api.queues(self.stack.box.vhost)
            await asyncio.sleep(self.interval)

    async def _sample(self) -> None:
        ticks = 0
        while not self._stopping:
            await asyncio.sleep(self.interval)
            ticks += 1
            if ticks % 10 == 0:
                with contextlib.suppress(Exception):
                    await self.stack.refresh_cpu_groups()
            try:
                depths = await self.stack.queue_depths()
            except Exception:
                depths = {}
            if self._stopping:
                break
            cpu = self.stack.cpu.sample()
            ours = sum(v for k, v in cpu.items() if k in OURS)
            # What the rest of the machine used meanwhile (other work sharing the cores).
            cpu["other"] = max(cpu["machine"] - ours, 0.0)
            sample = {
                "t": round(self.now(), 3),
                "ready": depths,
                # The management API's view: all messages (ready + unacked) per queue.
                "mgmt": {
                    q: {"messages": v["messages"]}
                    for q, v in self._mgmt.items()
                    if q in QUEUES or q.endswith(".dlq")
                },
                "cpu": {k: round(v, 3) for k, v in cpu.items()},
                "emails": self.stack.sink.total,
                # Resident memory of each service process, MiB (peaks: Stack.memory).
                "rss_mib": self.stack.memory(),
            }
            if self.counters is not None:
                sample.update(self.counters())
            self.samples.append(sample)

    def latest(self) -> dict[str, Any]:
        return self.samples[-1] if self.samples else {}

    def cpu_average(self, start: float = 0.0, end: float = float("inf")) -> dict[str, float]:
        rows = [s["cpu"] for s in self.samples if start <= s["t"] <= end]
        if not rows:
            return {}
        keys = {k for row in rows for k in row}
        return {k: round(sum(row.get(k, 0.0) for row in rows) / len(rows), 3) for k in sorted(keys)}

    def cpu_seconds(self, start: float = 0.0, end: float = float("inf")) -> dict[str, float]:
        """CPU seconds per group used between ``start`` and ``end`` (seconds since the
        monitor started): each sample's cores times the time since the previous one."""
        return cpu_seconds(self.samples, start, end)

    def peak_depths(self) -> dict[str, int]:
        peaks: dict[str, int] = {}
        for sample in self.samples:
            for queue, depth in sample["ready"].items():
                peaks[queue] = max(peaks.get(queue, 0), depth)
        return peaks

    def series(self) -> list[dict[str, Any]]:
        return self.samples


def cpu_seconds(
    samples: list[dict[str, Any]], start: float = 0.0, end: float = float("inf")
) -> dict[str, float]:
    totals: dict[str, float] = {}
    previous = 0.0  # the meter was reset when the monitor started
    for sample in samples:
        t = sample["t"]
        if start <= t <= end:
            for group, cores in sample["cpu"].items():
                totals[group] = totals.get(group, 0.0) + cores * (t - previous)
        previous = t
    return totals
