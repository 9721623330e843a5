"""The shop on the three-node cluster: its broker users on a vhost of their own, the
services' broker addresses, and the clock that says when orders flow again.

The users and permissions are the ones ``shopctl setup`` gives (its definitions
document, imported with one CLI call: the cluster's nodes run no management API).
Each service is given all three nodes, starting with a different one, so their
connections, and the queues each declares (a quorum queue's leader starts on the
declaring client's node), spread over the cluster as behind a load balancer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from shop_contract import SHOP
from shopctl.setup import policy
from shopctl.setup.definitions import definitions

from tests.support.accounts import ShopBroker
from tests.support.rabbit_cluster import ClusterNode, RabbitCluster
from tests.support.system import SERVICES


@dataclass(frozen=True, slots=True)
class ShopOnCluster:
    cluster: RabbitCluster
    vhost: str
    prefix: str

    def user(self, service: str) -> str:
        return SHOP.user_of(service, prefix=self.prefix)

    def url(self, service: str, node: ClusterNode) -> str:
        user = self.user(service)  # its development password is its name (policy)
        return node.url(self.vhost, user, user)

    def urls(self, service: str) -> str:
        """AMQP_URL: every node, comma-separated, this service's own node first."""
        nodes = self.cluster.nodes
        first = SERVICES.index(service) % len(nodes)
        ordered = nodes[first:] + nodes[:first]
        return ",".join(self.url(service, node) for node in ordered)

    def amqp_urls(self) -> dict[str, str]:
        return {service: self.urls(service) for service in SERVICES}

    @property
    def broker(self) -> ShopBroker:
        """For ``running_system``: the prefix, and the operator on the first node."""
        return ShopBroker(self.url("operator", self.cluster.nodes[0]), self.prefix)

    def operator_url(self, node: ClusterNode) -> str:
        """Full access to the vhost through ``node``: for inspection and taps."""
        return self.url("operator", node)


async def shop_on(cluster: RabbitCluster, unique: str) -> ShopOnCluster:
    """A fresh vhost with the shop's users (``heal()`` deletes both after the test)."""
    shop = ShopOnCluster(cluster, f"shop-{unique}", f"t{unique}_")
    users = [*policy.broker_users(prefix=shop.prefix), policy.operator_user(prefix=shop.prefix)]
    await cluster.import_definitions(definitions(users, {}, vhost=shop.vhost))
    return shop


_FINAL_SINCE = """
    SELECT count(*) FROM orders
    WHERE created_at > $1 AND status IN ('CONFIRMED', 'CANCELLED')
"""


async def flowing_again(order_dsn: str, since: float, *, timeout: float = 120.0) -> float:
    """Seconds from ``since`` (monotonic, the fault) until an order placed after it
    is final: every service has heard its events through the cluster again."""
    placed_after = datetime.now(UTC) - timedelta(seconds=time.monotonic() - since)
    deadline = time.monotonic() + timeout
    while True:
        conn = await asyncpg.connect(order_dsn, timeout=10)
        try:
            final = int(await conn.fetchval(_FINAL_SINCE, placed_after))
        finally:
            await conn.close()
        if final:
            return time.monotonic() - since
        if time.monotonic() > deadline:
            raise AssertionError(f"no order placed after the fault was final within {timeout}s")
        await asyncio.sleep(0.2)
