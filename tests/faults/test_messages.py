"""Bad and doubled messages: poison among good ones, every event delivered twice."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from shop_contract import SHOP

from tests.faults.broker import peek_dead_letters, publish_raw, queue_depths
from tests.faults.conftest import StartSystem
from tests.faults.scenario import Scenario, metric
from tests.support.accounts import ShopBroker
from tests.support.apps import wait_until
from tests.support.tap import Tap, event_tap

CONSUMERS_OF_ORDER_CREATED = sorted(
    SHOP.queue(spec.name).name for spec in SHOP.consumers if "order.created" in spec.consumes
)


@pytest.mark.timeout(150)
async def test_poison_messages_go_to_the_dead_letter_queues_at_once(
    start_system: StartSystem, databases: dict[str, str], vhost_url: str, shop_broker: ShopBroker
) -> None:
    async with start_system() as system:
        sc = await Scenario.begin("poison messages", system, databases, vhost_url, orders=40)
        sc.load.start()
        await sc.load.wait_accepted(10)

        # From the order service's own user: believed, but unreadable.
        unparseable = str(uuid.uuid4())
        # A relabelled event: the key says order.created, type and body another.
        forged = str(uuid.uuid4())
        as_order = shop_broker.url("order")
        await publish_raw(
            as_order,
            routing_key="order.created",
            body=b'{"id": "not json',
            message_id=unparseable,
            user_id=shop_broker.user("order"),
        )
        envelope = {
            "id": forged,
            "type": "order.exploded",
            "version": 1,
            "occurred_at": datetime.now(UTC).isoformat(),
            "correlation_id": str(uuid.uuid4()),
            "data": {"order_id": str(uuid.uuid4())},
        }
        await publish_raw(
            as_order,
            routing_key="order.created",
            body=json.dumps(envelope).encode(),
            message_id=forged,
            type_="order.exploded",
            user_id=shop_broker.user("order"),
        )
        published = time.monotonic()
        dlqs = [f"{q}.dlq" for q in CONSUMERS_OF_ORDER_CREATED]

        async def dead_lettered() -> bool:
            depths = await queue_depths(vhost_url, dlqs)
            return all(depth == 2 for depth in depths.values())

        # "At once": well before the first retry delay (1 s) could have come round twice.
        await wait_until(dead_lettered, timeout=5, interval=0.1)
        sc.notes["dead_lettered_after"] = f"{time.monotonic() - published:.2f}s"

        for dlq in dlqs:
            letters = {
                m["message_id"]: m["headers"] for m in await peek_dead_letters(vhost_url, dlq)
            }
            assert set(letters) == {unparseable, forged}, (dlq, letters)
            assert letters[unparseable]["x-exception"] == "MalformedMessage"
            assert letters[unparseable]["x-dead-letter-reason"] == "permanent-error"
            assert letters[forged]["x-exception"] == "ForgedMessage"
            assert letters[forged]["x-dead-letter-reason"] == "forged"
            for headers in letters.values():
                assert headers["x-original-queue"] == dlq.removesuffix(".dlq"), headers
                assert headers["x-original-routing-key"] == "order.created", headers
                assert headers["x-attempts"] == 1, headers
                assert headers["x-exception-message"], headers
                assert headers["x-failed-at"], headers

        await sc.check(dead_letters=dict.fromkeys(dlqs, 2))


class Duplicator:
    """Publishes every event the tap sees once more: same body, id and headers."""

    def __init__(self, tap: Tap) -> None:
        self.tap = tap
        self.republished: dict[str, str] = {}  # message id → routing key
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._cursor = 0

    async def run(self) -> None:
        while not self._stopping:
            await self.catch_up()
            await asyncio.sleep(0.02)

    async def catch_up(self) -> int:
        done = 0
        while self._cursor < len(self.tap.seen):
            message = self.tap.seen[self._cursor]
            self._cursor += 1
            message_id = message.message_id or ""
            if message_id in self.republished:
                continue  # our own copy coming back through the tap
            self.republished[message_id] = message.routing_key or ""
            await self.tap.republish(message)
            done += 1
        return done

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            await self._task

    def expected_duplicates(self) -> int:
        """Copies the consuming services must each recognise as already handled."""
        return sum(
            sum(1 for spec in SHOP.services if key in spec.consumes)
            for key in self.republished.values()
        )


@pytest.mark.timeout(150)
async def test_every_event_duplicated_changes_nothing(
    start_system: StartSystem, databases: dict[str, str], vhost_url: str, shop_broker: ShopBroker
) -> None:
    async with start_system() as system, event_tap(system.amqp_url) as tap:
        sc = await Scenario.begin("every event duplicated", system, databases, vhost_url)
        duplicator = Duplicator(tap)
        duplicator.start()
        try:
            sc.load.start()
            await sc.check(label="every event duplicated (first pass)")
            # Events published at the very end (email.sent, releases) get their
            # copies now; the checker then runs once more over the final state.
            await duplicator.stop()
            await duplicator.catch_up()
            expected = duplicator.expected_duplicates()

            async def absorbed_all() -> bool:
                total = 0.0
                for service in (spec.name for spec in SHOP.services):
                    total += await metric(
                        system, service, "events_consumed_total", outcome="duplicate"
                    )
                return total >= expected

            await wait_until(absorbed_all, timeout=30, interval=0.2)
            sc.notes["events_duplicated"] = len(duplicator.republished)
            report = await sc.check()
        finally:
            await duplicator.stop()
        assert report.duplicates_absorbed == expected, (report.duplicates_absorbed, expected)
