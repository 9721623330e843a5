"""The broker failing under load: restarted, connections cut, black-holed, alarmed.

``stop_app`` and the memory alarm are node-wide: they disturb every other user of
this RabbitMQ for their (short) duration, and are always undone in ``finally``.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import pytest

from tests.faults.broker import (
    app_stopped,
    close_vhost_connections,
    current_watermark,
    memory_alarm,
    vhost_of,
)
from tests.faults.conftest import StartSystem
from tests.faults.measured import measured
from tests.faults.scenario import Scenario, metric
from tests.support.apps import wait_until
from tests.support.faults_proxy import blackhole_proxy

BROKER_DOWN_SECONDS = 3.0
ALARM_SECONDS = 5.0
BLACKHOLE_SECONDS = 14.0  # > aiormq's 3 x (heartbeat + 1) grace with AMQP_HEARTBEAT=2
POST_P99_LIMIT = 1.0


@pytest.mark.timeout(180)
async def test_broker_restarted_under_load(
    start_system: StartSystem, databases: dict[str, str], vhost_url: str
) -> None:
    async with start_system() as system:
        sc = await Scenario.begin(
            "rabbitmq stop_app/start_app",
            system,
            databases,
            vhost_url,
            orders=50,
            rate=15,
            flaky=2,
            flaky_first=True,
        )
        sc.load.start()

        # Restart while a delayed retry waits in a retry queue (tok_gatewayTimeout's
        # second retry waits 5 s): it must come back after the restart too.
        async def retry_waiting() -> bool:
            return await metric(system, "payment", "events_consumed_total", outcome="retried") >= 2

        await wait_until(retry_waiting, timeout=30, interval=0.05)
        await sc.load.wait_accepted(15)
        async with app_stopped():
            await asyncio.sleep(BROKER_DOWN_SECONDS)
        back = time.monotonic()
        await sc.check(since=back)


@pytest.mark.timeout(150)
async def test_all_broker_connections_force_closed_under_load(
    start_system: StartSystem, databases: dict[str, str], vhost_url: str
) -> None:
    async with start_system() as system:
        sc = await Scenario.begin(
            "close_all_connections", system, databases, vhost_url, orders=60, rate=20
        )
        sc.load.start()
        closed_at = time.monotonic()
        for _ in range(2):
            await sc.load.wait_accepted(sc.load.accepted + 15)
            # Only this system's vhost: the same fault for it, none for other tests.
            await close_vhost_connections(vhost_of(vhost_url), "fault test")
            closed_at = time.monotonic()
        await sc.check(since=closed_at)


@pytest.mark.timeout(180)
async def test_broker_blackholed_then_reachable_again(
    start_system: StartSystem, databases: dict[str, str], vhost_url: str
) -> None:
    target = urlsplit(vhost_url)
    async with blackhole_proxy(target.hostname or "127.0.0.1", target.port or 5672) as proxy:
        via_proxy = f"127.0.0.1:{proxy.port}"
        async with start_system(via=via_proxy, extra_env={"AMQP_HEARTBEAT": "2"}) as system:
            sc = await Scenario.begin(
                "broker black-holed", system, databases, vhost_url, orders=50, rate=8
            )
            connections_before = proxy.accepted
            sc.load.start()
            await sc.load.wait_accepted(10)
            proxy.blackhole()
            silenced = time.monotonic()
            try:
                await asyncio.sleep(BLACKHOLE_SECONDS)
            finally:
                proxy.resume()
            resumed = time.monotonic()
            p99 = sc.load.latency_percentile(0.99, silenced, resumed)
            sc.notes["post_p99_while_blackholed"] = f"{p99 * 1000:.0f}ms"
            await sc.check(since=resumed)
            sc_reconnects = proxy.accepted - connections_before
            measured(f"  connections opened through the proxy after the cut: {sc_reconnects}")
            assert sc_reconnects >= 4, "every service should have noticed and reconnected"
            assert p99 < POST_P99_LIMIT, f"POST p99 {p99:.3f}s while the broker was silent"


@pytest.mark.timeout(150)
async def test_resource_alarm_api_keeps_accepting_and_drains_after(
    start_system: StartSystem, databases: dict[str, str], vhost_url: str
) -> None:
    async with start_system() as system:
        sc = await Scenario.begin("memory alarm", system, databases, vhost_url, orders=80, rate=8)
        await current_watermark()  # read now, so the alarm goes up promptly later
        sc.load.start()
        await sc.load.wait_accepted(10)
        async with memory_alarm():
            raised = time.monotonic()
            await asyncio.sleep(ALARM_SECONDS)
        cleared = time.monotonic()
        during = sc.load.latencies(raised, cleared)
        p99 = sc.load.latency_percentile(0.99, raised, cleared)
        for label, (start, end) in {
            "before": (0.0, raised),
            "during": (raised, cleared),
            "after": (cleared, float("inf")),
        }.items():
            if not sc.load.latencies(start, end):
                continue
            measured(
                f"  POST /orders {label} the alarm:"
                f" n={len(sc.load.latencies(start, end))}"
                f" p50={sc.load.latency_percentile(0.5, start, end) * 1000:.0f}ms"
                f" p99={sc.load.latency_percentile(0.99, start, end) * 1000:.0f}ms"
            )
        sc.notes["post_p99_during_alarm"] = f"{p99 * 1000:.0f}ms"
        await sc.check(since=cleared)
        assert len(during) >= 20, f"only {len(during)} POSTs during the alarm"
        assert not sc.load.errors(), f"POST failed during the alarm: {sc.load.errors()}"
        # Quick means: no slower than without the alarm (a POST that waited for the
        # broker would take the 5 s publish timeout), on a machine that may be busy.
        limit = max(POST_P99_LIMIT, 3 * sc.load.latency_percentile(0.99, 0.0, raised))
        assert p99 < limit, f"POST p99 {p99:.3f}s during the alarm (limit {limit:.3f}s)"
