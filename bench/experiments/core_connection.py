"""What an ORM ``AsyncSession`` costs a consumer transaction over a Core
``AsyncConnection``: the events library's inbox claim + one outbox insert +
commit (its own statements, ``events._inbox.claim`` and ``events._outbox.stage``,
as ``handle_delivery`` runs them), 3 rounds of 1,000 each way, client CPU per
transaction.

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
from events import Envelope, create_messaging_tables
from events._inbox import claim
from events._outbox import Staged, stage
from service_kit.database import create_engine, create_sessions
from shop_contract import PaymentAuthorized

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

    def one() -> tuple[Envelope, list[Staged]]:
        delivered = Envelope.wrap(event())
        return delivered, [Staged(Envelope.wrap(event(), caused_by=delivered), {})]

    async def via_session() -> None:
        delivered, emitted = one()
        async with sessions() as session, session.begin():
            await claim(session, consumer="bench", envelope=delivered)
            await stage(session, emitted)

    async def via_connection() -> None:
        delivered, emitted = one()
        async with engine.begin() as connection:
            # The library's functions only call execute(), which both offer.
            core: Any = connection
            await claim(core, consumer="bench", envelope=delivered)
            await stage(core, emitted)

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
