"""PostgreSQL connections terminated mid-transaction, in every service's database."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import asyncpg
import pytest

from tests.conftest import ADMIN_DSN
from tests.faults.conftest import StartSystem
from tests.faults.scenario import Scenario
from tests.support.postgres import TERMINATE
from tests.support.system import SERVICES

TERMINATE_FOR_SECONDS = 4.5  # < 5 s: a retried message's 2nd retry (after 1 + 5 s) gets through
TERMINATE_EVERY = 0.3


@pytest.mark.timeout(180)
async def test_database_connections_terminated_mid_transaction(
    start_system: StartSystem, databases: dict[str, str], vhost_url: str
) -> None:
    names = {service: dsn.rpartition("/")[2] for service, dsn in databases.items()}
    async with start_system() as system:
        # No flaky-gateway order: its two simulated timeouts and the terminations
        # would share one message's retry budget (3), so two terminated attempts
        # could dead-letter it, by design, and this scenario is about the database.
        sc = await Scenario.begin(
            "pg_terminate_backend", system, databases, vhost_url, orders=50, rate=12, flaky=0
        )
        sc.load.start()
        await sc.load.wait_accepted(8)
        terminated: Counter[str] = Counter()
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            stop = time.monotonic() + TERMINATE_FOR_SECONDS
            while time.monotonic() < stop:
                for service in SERVICES:
                    terminated[service] += await admin.fetchval(TERMINATE, names[service])
                await asyncio.sleep(TERMINATE_EVERY)
        finally:
            await admin.close()
        ended = time.monotonic()
        sc.notes["terminated"] = dict(terminated)
        # Breaking the email service's transaction after SMTP accepted is the
        # documented duplicate window (see invariants): counted, same Message-ID.
        await sc.check(since=ended, smtp_duplicates_allowed=True, timeout=120)
        assert all(terminated[s] > 0 for s in SERVICES), f"nothing to terminate: {terminated}"
