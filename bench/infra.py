"""The shared servers: a throw-away vhost and databases, and read-only statistics.

Everything the benchmark creates carries a ``bench_``/``bench-`` prefix and is
dropped again when the run ends (also on Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import asyncpg
import httpx

T = TypeVar("T")

ADMIN_DSN = os.environ.get(
    "BENCH_POSTGRES_ADMIN_URL",
    os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
AMQP_URL = os.environ.get(
    "BENCH_AMQP_URL", os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
)
RABBITMQ_API = os.environ.get(
    "BENCH_RABBITMQ_API_URL",
    os.environ.get("TEST_RABBITMQ_API_URL", "http://guest:guest@127.0.0.1:15672/api"),
)


def short_id() -> str:
    return uuid.uuid4().hex[:8]


def dsn_for(database: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


class RabbitApi:
    """The management HTTP API (statistics are refreshed every collect_statistics_interval)."""

    def __init__(self) -> None:
        self._http = httpx.AsyncClient(base_url=RABBITMQ_API, timeout=10)

    async def close(self) -> None:
        await self._http.aclose()

    async def get(self, path: str, **params: str) -> Any:
        # The broker is shared: someone's `rabbitmqctl stop_app` (the fault suite)
        # makes the API unreachable for a few seconds. Try for about 15 s.
        for attempt in range(6):
            try:
                response = await self._http.get(path, params=params)
                break
            except httpx.TransportError:
                if attempt == 5:
                    raise
                await asyncio.sleep(3)
        response.raise_for_status()
        return response.json()

    async def create_vhost(self, name: str) -> None:
        (await self._http.put(f"/vhosts/{quote(name, safe='')}")).raise_for_status()
        user = httpx.URL(RABBITMQ_API).username
        permissions = {"configure": ".*", "write": ".*", "read": ".*"}
        response = await self._http.put(
            f"/permissions/{quote(name, safe='')}/{user}", json=permissions
        )
        response.raise_for_status()

    async def delete_vhost(self, name: str) -> None:
        await self._http.delete(f"/vhosts/{quote(name, safe='')}")

    async def queues(self, vhost: str) -> dict[str, dict[str, int]]:
        rows = await self.get(
            f"/queues/{quote(vhost, safe='')}",
            columns="name,messages,messages_ready,messages_unacknowledged",
        )
        return {
            row["name"]: {
                "messages": int(row.get("messages") or 0),
                "ready": int(row.get("messages_ready") or 0),
                "unacked": int(row.get("messages_unacknowledged") or 0),
            }
            for row in rows
        }

    async def vhost_message_stats(self, vhost: str) -> dict[str, int]:
        data = await self.get(f"/vhosts/{quote(vhost, safe='')}")
        stats = data.get("message_stats") or {}
        return {k: int(v) for k, v in stats.items() if isinstance(v, int)}

    async def overview(self) -> dict[str, Any]:
        return dict(await self.get("/overview"))


async def finish_despite_cancel(cleanup: Awaitable[T]) -> T:
    """Run ``cleanup`` to its end even if the caller is cancelled meanwhile (a
    second Ctrl-C or SIGTERM while the run tears down): the servers are shared, so
    a drop cut off half way leaves vhosts, users and databases behind. The
    caller's cancellation is raised again once the cleanup is done."""
    task = asyncio.ensure_future(cleanup)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                cancelled = True
        except BaseException:  # noqa: S110 - the task's own failure: task.result() below
            pass
    if cancelled:
        if not task.cancelled():
            task.exception()  # retrieved; the cancellation is what the caller gets
        raise asyncio.CancelledError
    return task.result()


@dataclass
class Sandbox:
    """A vhost and some databases of our own on the shared servers."""

    vhost: str
    amqp_url: str
    databases: dict[str, str] = field(default_factory=dict)  # role -> database name

    def dsn(self, role: str) -> str:
        return dsn_for(self.databases[role])


@asynccontextmanager
async def sandbox(roles: tuple[str, ...], api: RabbitApi) -> AsyncIterator[Sandbox]:
    run = short_id()
    vhost = f"bench-{run}"
    await api.create_vhost(vhost)
    box = Sandbox(vhost, f"{AMQP_URL.rstrip('/')}/{quote(vhost, safe='')}")
    admin: asyncpg.Connection | None = None
    try:
        admin = await asyncpg.connect(ADMIN_DSN)
        for role in roles:
            name = f"bench_{role}_{run}"
            await admin.execute(f'CREATE DATABASE "{name}"')
            box.databases[role] = name
        yield box
    finally:

        async def drop() -> None:
            # Best effort: a server that went away (someone restarted it) must not
            # cost the run its results; leftovers carry the bench_ prefix.
            if admin is not None:
                for name in box.databases.values():
                    with contextlib.suppress(Exception):
                        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                with contextlib.suppress(Exception):
                    await admin.close()
            with contextlib.suppress(Exception):
                await api.delete_vhost(vhost)

        await finish_despite_cancel(drop())


async def database_stats(names: list[str]) -> dict[str, dict[str, int]]:
    """Cumulative pg_stat_database counters of ``names`` (flushed by backends ~1 s late)."""
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        rows = await connection.fetch(
            "SELECT datname, xact_commit, xact_rollback, tup_inserted, tup_updated,"
            " tup_deleted, tup_returned, tup_fetched, blks_read, blks_hit"
            " FROM pg_stat_database WHERE datname = ANY($1::text[])",
            names,
        )
    finally:
        await connection.close()
    return {row["datname"]: {k: int(v) for k, v in row.items() if k != "datname"} for row in rows}


async def backend_pids(names: list[str]) -> list[int]:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[])", names
        )
    finally:
        await connection.close()
    return [int(row["pid"]) for row in rows]


async def server_boot_times(api: RabbitApi) -> dict[str, float | None]:
    """When PostgreSQL and RabbitMQ last started (unix time): a change during a
    scenario means someone restarted a shared server under it."""
    import time

    out: dict[str, float | None] = {"postgresql": None, "rabbitmq": None}
    with contextlib.suppress(Exception):
        connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
        try:
            started = await connection.fetchval("SELECT pg_postmaster_start_time()")
            out["postgresql"] = started.timestamp()
        finally:
            await connection.close()
    with contextlib.suppress(Exception):
        nodes = await api.get("/nodes", columns="name,uptime")
        uptime_ms = max(int(n.get("uptime") or 0) for n in nodes)
        # Uptime is refreshed by the statistics collector (every 5 s): the boot
        # time derived from it jitters by that much, so compare with a margin.
        out["rabbitmq"] = time.time() - uptime_ms / 1000
    return out
