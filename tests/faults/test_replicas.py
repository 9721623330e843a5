"""Two of everything: two order APIs, two order workers and two processes of each
consuming service, as ``make run REPLICAS=2`` runs them, under load.

The same invariants as every fault scenario (``invariants.py``: every order final,
every effect exactly once), plus two that only replicas can break: the events of
one order leave each outbox in the order they were written although two relays
share it, and the replicas really share the work (each one's own /metrics).

No ``tok_gatewayTimeout`` card here: the sandbox gateway counts its failures per
payment process, so with two of them an order can fail four times in a row and
spend its whole retry budget. That is the sandbox's memory, not the system's.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from tests.faults.measured import measured
from tests.faults.scenario import Scenario
from tests.support.accounts import ShopBroker
from tests.support.apps import wait_until
from tests.support.shop import Shop
from tests.support.system import SERVICES, ServiceProcess, System, replicated, running_system
from tests.support.tap import Tap, event_tap

REPLICAS = 2
ORDERS = 100
RATE = 15.0
# A killed email process leaves its claim on an email for 3 x SMTP_TIMEOUT (30 s by
# default) before a survivor may send it; the test's SMTP sink answers at once.
SHORT_CLAIMS = {"SMTP_TIMEOUT": "3"}


@asynccontextmanager
async def two_of_everything(
    broker: ShopBroker,
    databases: dict[str, str],
    workdir: Path,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[System]:
    async with running_system(
        broker=broker,
        databases=databases,
        workdir=workdir,
        plan=replicated(REPLICAS),
        extra_env=extra_env,
        ready_timeout=120,  # ten processes importing at once on a small machine
    ) as system:
        try:
            yield system
        except BaseException:
            print(f"service logs in {workdir}\n{system.logs()}")
            raise


@pytest.mark.timeout(240)
async def test_two_replicas_of_everything_share_the_work_and_keep_every_invariant(
    shop_broker: ShopBroker, databases: dict[str, str], tmp_path: Path, vhost_url: str
) -> None:
    async with (
        two_of_everything(shop_broker, databases, tmp_path) as system,
        event_tap(vhost_url) as tap,
    ):
        sc = await Scenario.begin(
            f"{REPLICAS} replicas of everything",
            system,
            databases,
            vhost_url,
            orders=ORDERS,
            rate=RATE,
            flaky=0,
        )
        sc.load.start()
        await sc.check()

        work = await shares(system)
        measured(f"  work per process: {format_shares(work)}")
        idle = [name for name, (published, handled) in work.items() if not (published and handled)]
        assert not idle, f"replicas that did no work: {idle} ({format_shares(work)})"
        placed = {
            api.name: int(await Shop(system).metric(api.name, "orders_total", status="PENDING"))
            for api in system.replicas("order", "api")
        }
        measured(f"  orders placed per order-api: {placed}")
        assert all(placed.values()), f"an order API took no order: {placed}"

        assert await out_of_order(tap, databases) == []


@pytest.mark.timeout(240)
async def test_one_replica_of_each_killed_mid_load_the_others_carry_on(
    shop_broker: ShopBroker, databases: dict[str, str], tmp_path: Path, vhost_url: str
) -> None:
    async with (
        two_of_everything(shop_broker, databases, tmp_path, SHORT_CLAIMS) as system,
        event_tap(vhost_url) as tap,
    ):
        sc = await Scenario.begin(
            f"kill -9 one of {REPLICAS} replicas of each",
            system,
            databases,
            vhost_url,
            orders=ORDERS,
            rate=RATE,
            flaky=0,
        )
        sc.load.start()
        workers = [p for p in system.services.values() if p.role != "api"]

        # Mid-load: every replica has relayed and handled something, so the victims
        # die holding claimed outbox rows, unacked deliveries, open transactions.
        async def all_busy() -> bool:
            work = await shares(system)
            return all(published and handled for published, handled in work.values())

        await sc.load.wait_accepted(ORDERS // 3)
        await wait_until(all_busy, timeout=60, interval=0.1)
        victims = [system.replicas(p.service, p.role)[0] for p in replicated(REPLICAS)]
        survivors = [p for p in workers if p.name not in {v.name for v in victims}]
        before = await shares(system, survivors)
        await asyncio.gather(*(victim.stop(signal.SIGKILL) for victim in victims))
        killed = time.monotonic()
        sc.notes["killed"] = ",".join(victim.name for victim in victims)
        sc.notes["accepted_at_kill"] = sc.load.accepted

        # An email process killed between the SMTP server's 250 and its commit sends
        # that email again on redelivery (invariants.py: the documented window).
        await sc.check(since=killed, smtp_duplicates_allowed=True)

        after = await shares(system, survivors)
        carried = {name: after[name][1] - before[name][1] for name in after}
        measured(f"  deliveries handled by the survivors after the kill: {carried}")
        assert all(carried.values()), f"a survivor handled nothing after the kill: {carried}"
        assert await out_of_order(tap, databases) == []


async def shares(
    system: System, processes: list[ServiceProcess] | None = None
) -> dict[str, tuple[int, int]]:
    """Per worker process (not the order APIs): (outbox rows it published,
    deliveries it handled), from its own /metrics."""
    shop = Shop(system)
    counted = processes or [p for p in system.services.values() if p.role != "api"]

    async def work_of(name: str) -> tuple[int, int]:
        published = await shop.metric(name, "events_published_total", outcome="published")
        handled = await shop.metric(name, "events_consumed_total", outcome="handled")
        return int(published), int(handled)

    work = await asyncio.gather(*(work_of(p.name) for p in counted))
    return {p.name: w for p, w in zip(counted, work, strict=True)}


def format_shares(work: dict[str, tuple[int, int]]) -> str:
    return " ".join(f"{name}=published:{p}/handled:{h}" for name, (p, h) in work.items())


async def out_of_order(tap: Tap, databases: dict[str, str]) -> list[str]:
    """Events of one order (correlation id) that the broker saw in another order
    than their outbox wrote them, per publishing service. A copy published again
    (a relay killed before marking it sent) counts where it was first seen."""
    written: dict[str, list[tuple[str, str]]] = {}  # service → [(order id, event id)]
    for service in SERVICES:
        conn = await asyncpg.connect(databases[service], timeout=10)
        try:
            rows = await conn.fetch("SELECT correlation_id, event_id FROM outbox ORDER BY seq")
        finally:
            await conn.close()
        written[service] = [(str(r["correlation_id"]), str(r["event_id"])) for r in rows]
    expected = {event for rows in written.values() for _, event in rows}

    async def all_seen() -> bool:
        return expected <= {m.message_id for m in tap.seen}

    await wait_until(all_seen, timeout=15, interval=0.1)
    first_seen: dict[str, int] = {}
    for position, message in enumerate(tap.seen):
        if message.message_id is not None:
            first_seen.setdefault(message.message_id, position)
    bad = []
    for service, rows in written.items():
        last: dict[str, tuple[int, str]] = {}  # order id → (position, event id) seen last
        for order_id, event_id in rows:
            position = first_seen[event_id]
            previous = last.get(order_id)
            if previous is not None and previous[0] > position:
                bad.append(f"{service}: order {order_id}: {event_id} overtook {previous[1]}")
            last[order_id] = (position, event_id)
    return bad
