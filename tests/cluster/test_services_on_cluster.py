"""The four services on the three-node cluster, under load, while a node fails.

Every service process is given all three nodes (AMQP_URL, comma-separated), logs in
as its own least-privilege user, and declares its quorum queues with three members
(QUORUM_REPLICAS=3). Orders keep coming while one node is killed, stopped or cut
off; then the same checker as the fault tier (``tests/faults/invariants.py``)
waits until every order is final, every outbox and queue is empty, and every
effect happened exactly once: no message the broker confirmed was lost, none was
acted on twice.

Each scenario reports, from the moment the fault began: when an order placed
after it was final again (orders flow), when the fault was lifted, when every
invariant held (the backlog drained), and which services could not set up their
topology on another node meanwhile (see ``stalled``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from tests.cluster.measured import measured
from tests.cluster.shop import ShopOnCluster, flowing_again, shop_on
from tests.conftest import NewDatabase
from tests.faults.scenario import Scenario
from tests.support.apps import wait_until
from tests.support.rabbit_cluster import ClusterNode, QueueState, RabbitCluster
from tests.support.system import SERVICES, System, running_system

pytestmark = pytest.mark.timeout(360)

REPLICAS = 3
ENV = {
    "QUORUM_REPLICAS": str(REPLICAS),
    # A node cut off is noticed after ~3 missed beats (aiormq), not ~45 s.
    "AMQP_HEARTBEAT": "2",
}
ORDERS = 60
RATE = 8.0
FAULT_AFTER = 15  # orders accepted before the fault: it strikes mid-load
HOLD_SECONDS = 10.0  # how long the node stays away (a killed one: then it boots again)
KILLED_SECONDS = 5.0  # a killed node also takes its boot time (~20 s here) to come back
BUSIEST = "order.events"  # every order's outcomes meet there (2 events per order)

Fault = Callable[[ClusterNode], AbstractAsyncContextManager[float]]


@pytest.fixture
async def shop(cluster: RabbitCluster, unique: str) -> ShopOnCluster:
    return await shop_on(cluster, unique)


@pytest.fixture
async def databases(new_database: NewDatabase) -> dict[str, str]:
    return {name: await new_database(name) for name in SERVICES}


@asynccontextmanager
async def services_on(
    shop: ShopOnCluster, databases: dict[str, str], workdir: Path
) -> AsyncIterator[System]:
    async with running_system(
        broker=shop.broker,
        databases=databases,
        workdir=workdir,
        amqp_urls=shop.amqp_urls(),
        extra_env=ENV,
        ready_timeout=120,
    ) as system:
        try:
            yield system
        except BaseException:
            print(f"service logs in {workdir}\n{system.logs()}")
            raise


async def test_kill_9_of_the_node_leading_the_busiest_queue(
    cluster: RabbitCluster, shop: ShopOnCluster, databases: dict[str, str], tmp_path: Path
) -> None:
    await node_fault_under_load(
        cluster,
        shop,
        databases,
        tmp_path,
        "kill -9",
        cluster.killed,
        leading=BUSIEST,
        hold=KILLED_SECONDS,
    )


async def test_stop_app_of_a_node_then_start_app(
    cluster: RabbitCluster, shop: ShopOnCluster, databases: dict[str, str], tmp_path: Path
) -> None:
    await node_fault_under_load(
        cluster,
        shop,
        databases,
        tmp_path,
        "stop_app/start_app",
        cluster.app_stopped,
        leading="inventory.events",
    )


async def test_traffic_of_a_node_blocked(
    cluster: RabbitCluster, shop: ShopOnCluster, databases: dict[str, str], tmp_path: Path
) -> None:
    if not cluster.can_block:
        pytest.skip(f"{cluster.block_unavailable}; cluster.paused() is the closest substitute")

    def block(node: ClusterNode) -> AbstractAsyncContextManager[float]:
        return cluster.blocked(node, limit=HOLD_SECONDS + 60)

    await node_fault_under_load(
        cluster,
        shop,
        databases,
        tmp_path,
        f"traffic blocked {HOLD_SECONDS:.0f}s",
        block,
        leading="payment.events",
    )


async def node_fault_under_load(
    cluster: RabbitCluster,
    shop: ShopOnCluster,
    databases: dict[str, str],
    workdir: Path,
    label: str,
    fault: Fault,
    *,
    leading: str,
    hold: float = HOLD_SECONDS,
) -> None:
    """Start the services, load them, fault the node leading ``leading`` for
    ``hold`` seconds (mid-load), lift it, check every invariant, report times."""
    starting = time.monotonic()
    async with services_on(shop, databases, workdir) as system:
        started = time.monotonic() - starting
        quorum = await replicated_queues(cluster, shop.vhost)
        assert len(quorum) == 4 * 4, f"each consumer's queue and 3 retry queues: {quorum}"
        victim = cluster.node(quorum[leading])
        survivor = next(node for node in cluster.nodes if node is not victim)
        sc = await Scenario.begin(
            f"{label} of {victim.short} (leader of {leading})",
            system,
            databases,
            shop.operator_url(survivor),
            orders=ORDERS,
            rate=RATE,
            flaky=0,  # the deadline of a retried payment is not what this measures
        )
        sc.load.start()
        await sc.load.wait_accepted(FAULT_AFTER)
        marks = {name: _log_size(p.log_path) for name, p in system.services.items()}

        at_order = sc.load.accepted
        async with fault(victim) as began:
            flow = asyncio.create_task(flowing_again(databases["order"], began, timeout=180))
            await asyncio.sleep(max(0.0, began + hold - time.monotonic()))
        lifted = time.monotonic() - began
        flowing = await flow
        report, whole = await asyncio.gather(
            sc.check(since=began, timeout=120),
            cluster.wait_for_members(leading, vhost=shop.vhost, since=began, timeout=120),
        )
        drained = max(began, sc.load.finished_at) + report.drain_seconds - began

        stalled = {
            name: count
            for name, p in system.services.items()
            if (count := _setup_failures(p.log_path, marks[name]))
        }
        measured(
            f"services: {label} of {victim.short} (leader of {leading}) at order "
            f"{at_order}/{ORDERS}: lifted after {lifted:.1f}s; orders flow again "
            f"after {flowing:.1f}s; backlog drained after {drained:.1f}s; {leading}'s 3 "
            f"members back after {whole.seconds:.1f}s; "
            + (
                "could not set up on another node meanwhile: "
                + ", ".join(f"{name} ({n}x)" for name, n in stalled.items())
                if stalled
                else "no service failed to set up on another node"
            )
        )
        measured(f"  {report.line()} (services ready in {started:.0f}s)")


async def replicated_queues(cluster: RabbitCluster, vhost: str) -> dict[str, str]:
    """Every quorum queue of the shop (not the classic DLQs) once each has all its
    members online, with its leader's name."""
    states: dict[str, QueueState] = {}

    async def whole() -> bool:
        nonlocal states
        all_states = await cluster.queue_states(vhost=vhost)
        states = {n: q for n, q in all_states.items() if not n.endswith(".dlq")}
        return all(len(q.online) == REPLICAS and q.leader for q in states.values())

    try:
        await wait_until(whole, timeout=60, interval=0.5)
    except AssertionError:
        raise AssertionError(f"quorum queues without {REPLICAS} members online: {states}") from None
    return {name: str(q.leader) for name, q in states.items()}


def _log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _setup_failures(path: Path, mark: int) -> int:
    """``broker.setup_failed`` lines logged after ``mark``: connected, but the
    topology could not be declared there (e.g. its DLQ's home node was away)."""
    with path.open("rb") as log:
        log.seek(mark)
        lines = log.read().decode(errors="replace").splitlines()
    count = 0
    for line in lines:
        try:
            event = json.loads(line).get("event")
        except ValueError:
            continue
        count += event == "broker.setup_failed"
    return count
