"""Breaking a test database's connections from the server side, as a restart or
an operator's ``pg_terminate_backend`` would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import ADMIN_DSN
from tests.support.apps import wait_until

TERMINATE = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = $1 AND pid <> pg_backend_pid()
"""
_COUNT = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"


async def terminate_connections(database: str) -> int:
    """Terminate every connection to ``database`` and wait until they are gone;
    return how many there were."""
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        killed = int(await admin.fetchval(TERMINATE, database))

        async def gone() -> bool:
            return int(await admin.fetchval(_COUNT, database)) == 0

        await wait_until(gone)
        return killed
    finally:
        await admin.close()


@contextmanager
def connections_closed_under(
    engine: AsyncEngine, engine_event: str, *, statement: str = "", times: int = 1
) -> Iterator[list[str]]:
    """Within the block, close the connection under the next ``times`` statements
    holding ``statement`` (``"before_cursor_execute"``) or commits (``"commit"``),
    as a server ending it in that instant would. Yields the events closed under."""
    closed: list[str] = []

    def close(connection: Any, *args: Any) -> None:
        about = engine_event != "before_cursor_execute" or statement in args[1]
        if about and len(closed) < times:
            closed.append(engine_event)
            connection.connection.driver_connection.terminate()

    event.listen(engine.sync_engine, engine_event, close)
    try:
        yield closed
    finally:
        event.remove(engine.sync_engine, engine_event, close)
