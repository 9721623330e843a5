"""py-spy on every service while the throughput scenario runs, summarized.

``py-spy record --format raw`` writes collapsed stacks; from them: the share of
on-CPU samples per library (by the innermost frame's file), the top functions by
self time, and the top functions by inclusive time. The raw files stay in
``<out>/profile/<service>.txt`` (collapsed stacks: feed them to any flame graph tool).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from bench.stack import Stack

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")

# Innermost-frame file → bucket. Order matters: first match wins.
BUCKETS = (
    ("sqlalchemy", "sqlalchemy"),
    ("asyncpg", "asyncpg"),
    ("aio_pika", "aio-pika/aiormq/pamqp"),
    ("aiormq", "aio-pika/aiormq/pamqp"),
    ("pamqp", "aio-pika/aiormq/pamqp"),
    ("structlog", "logging (structlog)"),
    ("/logging/", "logging (stdlib)"),
    ("opentelemetry", "opentelemetry"),
    ("prometheus_client", "prometheus_client"),
    ("pydantic", "pydantic"),
    ("starlette", "fastapi/starlette"),
    ("fastapi", "fastapi/starlette"),
    ("uvicorn", "uvicorn"),
    ("httptools", "uvicorn"),
    ("aiosmtplib", "aiosmtplib"),
    ("/email/", "stdlib email"),
    ("greenlet", "sqlalchemy"),
    ("libs/events", "events (shop lib)"),
    ("libs/service_kit", "service_kit (shop lib)"),
    ("services/", "service code"),
    ("json", "json"),
    ("uuid", "uuid"),
    ("asyncio", "asyncio"),
    ("uvloop", "asyncio"),
    ("typing", "typing"),
)


def bucket(file: str) -> str:
    for needle, name in BUCKETS:
        if needle in file:
            return name
    return "other"


def short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{match['func']} ({file})"


# What a sample was doing, by its whole stack; first match wins. SQLAlchemy runs
# its synchronous core in greenlets, whose stacks py-spy shows apart from the
# event loop's; samples without any Python frame are C code (the event loop,
# the drivers' Cython protocols, system calls).
ACTIVITIES = (
    ("logging (structlog + stdlib)", ("structlog", "logging/__init__")),
    ("SMTP client (aiosmtplib, email building)", ("aiosmtplib", "/email/", "email_service/domain")),
    ("HTTP request (FastAPI, pydantic, handler)", ("fastapi/routing", "starlette/")),
    ("outbox relay", ("OutboxRelay",)),
    ("consumer: handler transaction", ("EventConsumer._handle", "handle_delivery")),
    ("consumer: decode, ack, retry bookkeeping", ("EventConsumer",)),
    ("AMQP client (aio-pika, aiormq, pamqp)", ("aiormq", "aio_pika", "pamqp")),
)


def activity(frames: list[str]) -> str:
    if not frames:
        return "no Python frame (C: event loop, driver protocols, syscalls)"
    stack = ";".join(frames)
    if "Runner.run" not in stack and "run_forever" not in stack and "Thread" not in stack:
        return "SQLAlchemy sync core (greenlet stacks)"
    for name, needles in ACTIVITIES:
        if any(n in stack for n in needles):
            return name
    return "other (event loop, asyncpg outside handlers, ...)"


def summarize(raw: Path, top: int = 15) -> dict[str, Any]:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    activities: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        total += count
        activities[activity(frames)] += count
        if not frames:
            continue
        leaf = frames[-1]
        match = _FRAME.match(leaf)
        buckets[bucket(match["file"] if match else leaf)] += count
        self_time[short(leaf)] += count
        for name in {short(f) for f in frames}:
            inclusive[name] += count

    def share(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [{"frame": name, "share": round(c / total, 3)} for name, c in counter.most_common(n)]

    return {
        "samples": total,
        "by_activity": {k: round(v / total, 3) for k, v in activities.most_common()}
        if total
        else {},
        # Innermost Python frame's library (C code below it is counted there).
        "by_library": {k: round(v / total, 3) for k, v in buckets.most_common()} if total else {},
        "top_self": share(self_time, top),
        "top_inclusive": share(inclusive, top + 10),
    }


class Profiler:
    def __init__(self, stack: Stack, out: Path, *, seconds: float, rate: int = 100) -> None:
        self.stack = stack
        self.out = out / "profile"
        self.seconds = seconds
        self.rate = rate
        self.processes: dict[str, tuple[asyncio.subprocess.Process, ...]] = {}
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._start())

    async def close(self) -> None:
        """Stop whatever still runs: a profiler that has not started yet, py-spy
        processes not yet finished (the scenario failed or the run was cancelled)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])
        for procs in self.processes.values():
            for proc in procs:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    with contextlib.suppress(Exception):
                        await proc.wait()

    async def _start(self) -> None:
        exe = shutil.which("py-spy")
        if exe is None:
            self.error = (
                "py-spy not on PATH (uv run --group bench --with py-spy python -m bench ...)"
            )
            return
        self.out.mkdir(parents=True, exist_ok=True)
        # Skip the first seconds (connections warming up), stop before the end.
        await asyncio.sleep(min(5.0, self.seconds / 6))
        duration = max(5, int(self.seconds * 2 / 3))
        for name, service in self.stack.services.items():
            if service.process is None:
                continue
            pid = str(service.process.pid)
            # BENCH_PYSPY_ARGS: extra py-spy options, e.g. "--native" (then drop
            # --nonblocking: native stacks need the process paused).
            extra = os.environ.get("BENCH_PYSPY_ARGS", "--nonblocking").split()
            process = await asyncio.create_subprocess_exec(
                exe, "record", "--pid", pid, "--duration", str(duration),
                "--rate", str(self.rate), *extra, "--format", "raw",
                "--output", str(self.out / f"{name}.txt"),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            self.processes[name] = (process,)

    async def finish(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        if self._task is not None:
            try:
                await self._task  # every py-spy started (it waits a few seconds first)
            except Exception as exc:
                self.error = f"py-spy did not start: {exc!r}"
        for name, procs in self.processes.items():
            for proc in procs:
                try:
                    await asyncio.wait_for(proc.wait(), 60)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            raw = self.out / f"{name}.txt"
            if raw.exists():
                results[name] = summarize(raw)
            else:
                err = b""
                if procs[0].stderr is not None:
                    err = await procs[0].stderr.read()
                results[name] = {"error": err.decode(errors="replace")[-500:]}
        if self.error:
            results["error"] = self.error
        return results


def main() -> None:
    """``python -m bench.profile <service>.txt ...``: summarize py-spy raw files."""
    import json
    import sys

    for name in sys.argv[1:]:
        print(f"== {name}")
        print(json.dumps(summarize(Path(name), top=25), indent=1))


if __name__ == "__main__":
    main()
