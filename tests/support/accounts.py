"""The shop's broker users on a test's own vhost: the same least-privilege users and
permissions ``shopctl setup`` creates, under a prefix no other test uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aio_pika
import httpx
from events import Envelope, Event, message_for
from shop_contract import SHOP
from shopctl.setup import policy
from shopctl.setup.rabbitmq import ManagementApi, apply_broker, segment


@dataclass(frozen=True, slots=True)
class ShopBroker:
    """Where each service logs in: ``url("payment")`` is payment's own user on the vhost."""

    vhost_url: str  # the test's administrator on the same vhost (taps, inspection)
    prefix: str

    def user(self, service: str) -> str:
        """``operator`` too: the people's account, which may impersonate (replays)."""
        return SHOP.user_of(service, prefix=self.prefix)

    def url(self, service: str, *, via: str | None = None) -> str:
        """``via``: ``host:port`` of a proxy in front of the broker, if any."""
        parsed = httpx.URL(self.vhost_url)
        user = self.user(service)  # its development password is its name (policy)
        where = via or f"{parsed.host}:{parsed.port or 5672}"
        return f"amqp://{user}:{user}@{where}{parsed.raw_path.decode()}"


@asynccontextmanager
async def shop_broker_users(
    vhost_url: str, management_api: str, prefix: str
) -> AsyncIterator[ShopBroker]:
    users = [*policy.broker_users(prefix=prefix), policy.operator_user(prefix=prefix)]
    vhost = httpx.URL(vhost_url).path.lstrip("/") or "/"
    async with ManagementApi(management_api) as api:
        await apply_broker(api, users, {}, vhost=vhost, wait=10)
        try:
            yield ShopBroker(vhost_url, prefix)
        finally:
            for user in users:
                await api.delete(f"/users/{segment(user.name)}")


async def publish_as_owner(broker: ShopBroker, *events: Event) -> list[Envelope]:
    """Publish each event as its owning service's user would (confirmed, mandatory)."""
    envelopes = []
    for event in events:
        owner = SHOP.owner_of(event.TYPE)
        if owner is None:
            raise ValueError(f"nobody owns {event.TYPE}")
        connection = await aio_pika.connect(broker.url(owner.name))
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(SHOP.exchange, ensure=False)
            envelope = Envelope.wrap(event)
            message = message_for(envelope, user_id=broker.user(owner.name))
            await exchange.publish(message, envelope.type, mandatory=True)
            envelopes.append(envelope)
    return envelopes
