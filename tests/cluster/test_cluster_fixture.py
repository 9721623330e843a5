"""The cluster fixture, proven: three nodes form one cluster, a quorum queue gets a
member on each, and messages confirmed to the leader's node are all consumed from a
surviving node after each fault the scenarios use (kill -9, stop_app, traffic
blocked), with the recovery times measured."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from tests.cluster.measured import measured
from tests.support.rabbit_cluster import (
    ClusterNode,
    RabbitCluster,
    consume_ids,
    declare_quorum_queue,
    probe_until_usable,
    publish_confirmed,
)

pytestmark = pytest.mark.timeout(180)

MESSAGES = 200
BLOCK_SECONDS = 10.0
PAUSE_SECONDS = 3.0  # under net_ticktime: the others keep it as a member

Fault = Callable[[ClusterNode], AbstractAsyncContextManager[float]]


async def test_three_nodes_form_one_cluster(cluster: RabbitCluster) -> None:
    measured(f"3 nodes booted and clustered in {cluster.boot_seconds:.1f}s")
    status = await cluster.cluster_status()
    names = sorted(node.name for node in cluster.nodes)
    assert sorted(status["running_nodes"]) == names
    assert sorted(status["disk_nodes"]) == names
    assert not status["partitions"]
    assert "rabbit@localhost" not in status["running_nodes"]
    for node in cluster.nodes:
        # Each node answers on its own address, and its beam.smp is ours.
        assert node.beam_pid is not None
        assert node.process is not None
        assert os.getpgid(node.beam_pid) == node.process.pid
        running = await cluster.running_nodes(via=node)
        assert sorted(running) == names


async def test_quorum_queue_gets_a_member_on_every_node(
    cluster: RabbitCluster, unique: str
) -> None:
    queue = f"cq-members-{unique}"
    await cluster.declare_quorum_queue(queue, via=cluster.nodes[1])
    recovery = await cluster.wait_for_members(queue, timeout=30)
    assert sorted(recovery.state.members) == sorted(n.name for n in cluster.nodes)
    states = sorted(str(m["Raft State"]) for m in await cluster.quorum_status(queue))
    assert states == ["follower", "follower", "leader"]


async def test_vhost_and_user_helpers(cluster: RabbitCluster, unique: str) -> None:
    vhost, user, password = f"v-{unique}", f"u-{unique}", f"p-{unique}"
    await cluster.add_vhost(vhost)
    await cluster.add_user(user, password, vhost=vhost)
    queue = f"cq-vhost-{unique}"
    first, *others = cluster.urls(vhost, user, password)
    await declare_quorum_queue(first, queue)
    for i, url in enumerate(others, 2):  # the same vhost, user and queue on every node
        ids = await publish_confirmed(url, queue, 3, prefix=f"via-node{i}")
        assert set(await consume_ids(url, queue, ids)) == set(ids)
    await cluster.heal()  # deletes what the test added (the fixture would, after it)
    vhosts = await cluster.ctl(cluster.nodes[0], "list_vhosts", "--formatter", "json")
    users = await cluster.ctl(cluster.nodes[0], "list_users", "--formatter", "json")
    assert vhost not in vhosts
    assert user not in users


async def confirmed_messages_survive(
    cluster: RabbitCluster,
    queue: str,
    label: str,
    fault: Fault,
    *,
    hold: float = 0.0,
    elect_within: float = 60.0,
) -> bool:
    """Publish confirmed messages to the leader's node, fault the leader, and
    consume them all from a surviving node. ``hold``: keep the fault at least this
    long (a block lasts its time even once the others have moved on). True if
    the faulted leader logged that it paused itself as a minority."""
    await cluster.declare_quorum_queue(queue, via=cluster.nodes[0])
    await cluster.wait_for_members(queue, timeout=30)
    leader = await cluster.leader_of(queue)
    ids = await publish_confirmed(leader.url(), queue, MESSAGES)
    survivor = next(node for node in cluster.nodes if node is not leader)

    mark = cluster.log_mark(leader)

    async with fault(leader) as began:
        # The CLI sees the election (polling, about a second a call); a confirmed
        # publish through a surviving node sees the queue take writes again.
        (new_leader, elected), usable = await asyncio.gather(
            cluster.wait_for_leader(
                queue, other_than=leader, via=survivor, since=began, timeout=elect_within
            ),
            probe_until_usable(survivor.url(), queue, since=began, timeout=elect_within),
        )
        seen = await consume_ids(survivor.url(), queue, ids, timeout=60)
        consumed = time.monotonic() - began
        await asyncio.sleep(max(0.0, began + hold - time.monotonic()))
        lifted = time.monotonic()
    whole = await cluster.wait_for_members(queue, via=survivor, since=began, timeout=120)

    redelivered = sum(count - 1 for count in seen.values())
    paused = "minority/secondary status detected" in cluster.log_since(leader, mark)
    measured(
        f"{label} of leader {leader.short}: new leader {new_leader.short} elected after "
        f"{elected.seconds:.1f}s, queue usable (confirmed publish) after {usable:.1f}s, "
        f"{len(seen)}/{len(ids)} confirmed messages consumed after {consumed:.1f}s "
        f"({redelivered} redelivered); fault lifted after {lifted - began:.1f}s, "
        f"all 3 members back after {whole.seconds:.1f}s"
        + ("; the old leader paused itself (pause_minority)" if paused else "")
    )
    assert set(seen) == set(ids)
    assert new_leader is not leader
    return paused


async def test_kill_9_of_the_leader(cluster: RabbitCluster, unique: str) -> None:
    await confirmed_messages_survive(cluster, f"cq-kill-{unique}", "kill -9", cluster.killed)


async def test_stop_app_of_the_leader(cluster: RabbitCluster, unique: str) -> None:
    await confirmed_messages_survive(
        cluster, f"cq-stop-app-{unique}", "stop_app/start_app", cluster.app_stopped
    )


async def test_traffic_of_the_leader_blocked(cluster: RabbitCluster, unique: str) -> None:
    if not cluster.can_block:
        pytest.skip(f"{cluster.block_unavailable}; cluster.paused() is the closest substitute")

    def block(node: ClusterNode) -> AbstractAsyncContextManager[float]:
        return cluster.blocked(node, limit=BLOCK_SECONDS + 60)

    # Cut off for 10 s (longer only if the others have not taken over by then):
    # they see it down after net_ticktime (5 s), elect a new leader and carry on;
    # the cut-off node, a minority, pauses itself (pause_minority) and rejoins once
    # its traffic flows again.
    paused = await confirmed_messages_survive(
        cluster,
        f"cq-block-{unique}",
        f"traffic blocked {BLOCK_SECONDS:.0f}s",
        block,
        hold=BLOCK_SECONDS,
        elect_within=45,
    )
    assert paused, "the cut-off node never saw itself as a minority: was it cut off?"


async def test_paused_follower_comes_back(cluster: RabbitCluster, unique: str) -> None:
    """SIGSTOP of a follower (the fallback where iptables is unavailable): the
    queue keeps its leader and takes confirmed messages; the follower catches up."""
    queue = f"cq-pause-{unique}"
    await cluster.declare_quorum_queue(queue, via=cluster.nodes[0])
    await cluster.wait_for_members(queue, timeout=30)
    leader = await cluster.leader_of(queue)
    follower = next(node for node in cluster.nodes if node is not leader)
    async with cluster.paused(follower, limit=30) as began:
        ids = await publish_confirmed(leader.url(), queue, MESSAGES, prefix="paused")
        confirmed = time.monotonic() - began
        await asyncio.sleep(max(0.0, began + PAUSE_SECONDS - time.monotonic()))
        resumed = time.monotonic()
    whole = await cluster.wait_for_members(queue, since=resumed, timeout=60)
    seen = await consume_ids(leader.url(), queue, ids)
    measured(
        f"SIGSTOP of follower {follower.short} for {resumed - began:.1f}s: {len(ids)} messages "
        f"confirmed in {confirmed:.1f}s meanwhile; all 3 members online "
        f"{whole.seconds:.1f}s after SIGCONT"
    )
    assert set(seen) == set(ids)
