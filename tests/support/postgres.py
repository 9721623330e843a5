"""Breaking a test database's connections from the server side, as a restart or
an operator's ``pg_terminate_backend`` would."""

from __future__ import annotations

import asyncpg

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
