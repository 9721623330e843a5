"""One fault scenario's bookkeeping: the load it drives, the checker it ends with."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from tests.faults.invariants import Expectations, Report, assert_consistent
from tests.faults.load import Load, plan_orders
from tests.support.shop import Shop
from tests.support.system import System


@dataclass
class Scenario:
    name: str
    system: System
    databases: dict[str, str]
    amqp_url: str  # the real vhost, for inspection (services may go through a proxy)
    load: Load
    stock: dict[str, int]
    notes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def begin(
        cls,
        name: str,
        system: System,
        databases: dict[str, str],
        amqp_url: str,
        *,
        orders: int = 50,
        rate: float = 20.0,
        flaky: int = 1,
        flaky_first: bool = False,
        concurrency: int = 8,
    ) -> Scenario:
        shop = Shop(system)
        load = Load(
            shop,
            plan_orders(orders, flaky=flaky, flaky_first=flaky_first),
            rate=rate,
            concurrency=concurrency,
        )
        stock = await load.set_stock()
        return cls(name, system, databases, amqp_url, load, stock)

    @property
    def shop(self) -> Shop:
        return self.load.shop

    async def check(
        self,
        *,
        since: float | None = None,
        dead_letters: dict[str, int] | None = None,
        smtp_duplicates_allowed: bool = False,
        deadline_may_cancel: bool = False,
        timeout: float = 90.0,
        label: str | None = None,
    ) -> Report:
        """Finish the load, then wait for every invariant (see ``invariants``).

        Drain time is measured from ``since`` (the end of the fault) or from the
        last accepted order, whichever is later.
        """
        await self.load.finish()
        start = max(since or 0.0, self.load.finished_at)
        expect = Expectations(
            orders=self.load.order_ids(),
            stock=self.stock,
            dead_letters=dead_letters or {},
            smtp_duplicates_allowed=smtp_duplicates_allowed,
            deadline_may_cancel=deadline_may_cancel,
        )
        errors = self.load.errors()
        extra = dict(self.notes)
        if errors:
            extra["post_errors"] = dict(errors)
        return await assert_consistent(
            label or self.name,
            self.system,
            self.databases,
            self.amqp_url,
            expect,
            since=start,
            timeout=timeout,
            extra=extra,
        )


async def kill(system: System, name: str) -> None:
    """``kill -9``: no lifespan, no graceful anything."""
    await system.services[name].stop(signal.SIGKILL)


async def restart(system: System, *names: str) -> None:
    await system.start(*names)


async def metric(system: System, service: str, name: str, **labels: str) -> float:
    return await Shop(system).metric(service, name, **labels)


async def sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
