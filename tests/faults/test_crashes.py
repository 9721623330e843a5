"""Processes dying: kill -9 at the worst moments, SIGTERM under load."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import asyncpg
import pytest
from shop_contract import SHOP

from tests.faults.broker import memory_alarm
from tests.faults.conftest import StartSystem
from tests.faults.measured import measured
from tests.faults.scenario import Scenario, kill, metric, restart
from tests.support.apps import wait_until
from tests.support.system import SERVICES, System
from tests.support.tap import event_tap


@pytest.mark.timeout(150)
@pytest.mark.parametrize("victim", ["inventory", "payment"])
async def test_consumer_killed_mid_batch_comes_back_and_loses_nothing(
    victim: str, start_system: StartSystem, databases: dict[str, str], vhost_url: str
) -> None:
    async with start_system() as system:
        # The sandbox gateway keeps tok_gatewayTimeout's attempt count in memory:
        # a restarted payment service fails it twice *again*, which can spend the
        # whole retry budget. That is the sandbox's amnesia, not the system's, so
        # no flaky card where payment restarts.
        sc = await Scenario.begin(
            f"kill -9 {victim} mid-batch",
            system,
            databases,
            vhost_url,
            orders=60,
            rate=30,
            flaky=0 if victim == "payment" else 1,
        )
        sc.load.start()

        # Mid-batch: the victim is busy (deliveries unacked, transactions open).
        async def busy() -> bool:
            return await metric(system, victim, "events_consumed_total", outcome="handled") >= 10

        await wait_until(busy, timeout=30, interval=0.05)
        await kill(system, victim)
        await asyncio.sleep(1.0)  # orders keep arriving while it is gone
        await restart(system, victim)
        await sc.check(since=time.monotonic())


@pytest.mark.timeout(150)
async def test_order_killed_between_commit_and_publish_relays_after_restart(
    start_system: StartSystem, databases: dict[str, str], vhost_url: str
) -> None:
    async with start_system() as system:
        sc = await Scenario.begin(
            "kill -9 order between commit and publish", system, databases, vhost_url,
            orders=30, rate=60, flaky=0,
        )  # fmt: skip
        async with memory_alarm():
            # Publishes block (the broker stops reading publishers), the API does not.
            sc.load.start()
            await sc.load.finish()
            assert not sc.load.errors(), f"POST failed under the alarm: {sc.load.errors()}"
            stranded = await _unsent(databases["order"])
            await kill(system, "order")
        restored = time.monotonic()
        assert stranded > 0, "the alarm should have kept order.created in the outbox"
        sc.notes["stranded_in_outbox"] = stranded
        await restart(system, "order")
        await sc.check(since=restored)


@pytest.mark.timeout(180)
async def test_relay_killed_after_publish_before_mark_duplicates_are_absorbed(
    start_system: StartSystem, databases: dict[str, str], vhost_url: str
) -> None:
    async with start_system() as system, event_tap(vhost_url) as tap:
        sc = await Scenario.begin(
            "kill -9 order repeatedly", system, databases, vhost_url, orders=80, rate=25
        )
        sc.load.start()
        kills = 0
        for delay in (0.8, 1.1, 0.6):
            await sc.load.wait_accepted(min(len(sc.load.planned), sc.load.accepted + 5))
            await asyncio.sleep(delay)
            await kill(system, "order")
            kills += 1
            await restart(system, "order")
        sc.notes["kills"] = kills
        sc.notes["replayed_posts"] = sum(p.replayed for p in sc.load.placements)
        await sc.check()

        # The tap saw every publish: an event id seen twice was published twice
        # (relay killed before marking it sent). Each consuming service that was
        # never restarted must have absorbed every such copy as a duplicate.
        copies = Counter(m.message_id for m in tap.seen)
        types = {m.message_id: m.type or "" for m in tap.seen}
        republished = {i: n - 1 for i, n in copies.items() if n > 1}
        measured(f"  events published more than once: {len(republished)}")
        for service in ("inventory", "payment", "email"):
            expected = sum(
                n for i, n in republished.items() if types[i] in SHOP.service(service).consumes
            )
            absorbed = await metric(system, service, "events_consumed_total", outcome="duplicate")
            assert absorbed >= expected, f"{service}: {absorbed} duplicates absorbed < {expected}"


@pytest.mark.timeout(180)
async def test_sigterm_everything_under_load_then_restart_dead_letters_nothing(
    start_system: StartSystem, databases: dict[str, str], vhost_url: str
) -> None:
    async with start_system() as system:
        sc = await Scenario.begin(
            "SIGTERM all under load", system, databases, vhost_url, orders=50, rate=20, flaky=0
        )  # no flaky card: payment restarts (see the kill -9 scenario)
        sc.load.start()
        await sc.load.wait_accepted(20)
        before = {s: _stops_logged(system, s) for s in SERVICES}
        # stop() fails the test if a service ignores SIGTERM for 40 s.
        codes = await asyncio.gather(*(system.services[s].stop() for s in SERVICES))
        graceful = {s: _stops_logged(system, s) - before[s] for s in SERVICES}
        sc.notes["exit_codes"] = ",".join(str(c) for c in codes)
        await asyncio.sleep(0.5)
        await restart(system)
        restarted = time.monotonic()
        await sc.check(since=restarted)  # DLQs empty is part of the invariants
        # uvicorn re-raises the signal after its graceful shutdown: -15 is clean too.
        assert all(code in (0, -signal.SIGTERM) for code in codes), codes
        assert graceful == dict.fromkeys(SERVICES, 1), f"lifespan shutdown not logged: {graceful}"


def _stops_logged(system: System, service: str) -> int:
    """How many graceful shutdowns (end of lifespan) the service's log records."""
    try:
        return system.services[service].log_path.read_text().count('"service.stopped"')
    except FileNotFoundError:
        return 0


async def _unsent(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
    finally:
        await conn.close()
