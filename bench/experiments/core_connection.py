"""What an ORM ``AsyncSession`` costs a consumer transaction over a Core
``AsyncConnection``: the events library's inbox claim + one outbox insert +
commit, 3 rounds of 1,000 each way, client CPU per transaction.

``uv run --group bench python -m bench.experiments.core_connection``
(its own ``bench_…`` database, dropped at the end; figures in docs/benchmarks.md).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import uvloop
from events import inbox, outbox
from events.catalogue import PaymentAuthorized
from events.envelope import Envelope
from events.tables import create_messaging_tables
from service_kit.database import create_engine, create_sessions

from bench.infra import ADMIN_DSN, dsn_for, short_id

ROUNDS, PER_ROUND, WARM_UP = 3, 1000, 200


def event() -> PaymentAuthorized:
    return PaymentAuthorized(
        order_id=uuid.uuid4(), amount="29.50", currency="EUR", authorization_id="auth-1"
    )


async def measure(url: str) -> dict[str, list[float]]:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(create_messaging_tables)
    sessions = create_sessions(engine)

    async def via_session() -> None:
        envelope = Envelope.wrap(event())
        async with sessions() as session, session.begin():
            await inbox.claim(session, consumer="bench", envelope=envelope)
            await outbox.add(session, event(), correlation_id=envelope.correlation_id)

    async def via_connection() -> None:
        envelope = Envelope.wrap(event())
        async with engine.begin() as connection:
            # The library's functions only call execute(), which both offer.
            core: Any = connection
            await inbox.claim(core, consumer="bench", envelope=envelope)
            await outbox.add(core, event(), correlation_id=envelope.correlation_id)

    ways: dict[str, Callable[[], Awaitable[None]]] = {
        "AsyncSession": via_session,
        "AsyncConnection": via_connection,
    }
    for run in ways.values():
        for _ in range(WARM_UP):
            await run()
    ms_per_tx: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(ROUNDS):  # interleaved, so other work weighs on both alike
        for name, run in ways.items():
            cpu = time.process_time()
            for _ in range(PER_ROUND):
                await run()
            ms_per_tx[name].append((time.process_time() - cpu) * 1000 / PER_ROUND)
    await engine.dispose()
    return ms_per_tx


async def main() -> None:
    name = f"bench_core_connection_{short_id()}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = dsn_for(name).replace("postgresql://", "postgresql+asyncpg://", 1)
        for way, figures in (await measure(url)).items():
            shown = ", ".join(f"{v:.2f} ms" for v in figures)
            print(f"{way:16} client CPU per transaction: {shown}")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    uvloop.run(main())
