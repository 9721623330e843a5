"""Orders to drive through the shop while a fault is injected, and what was asked for.

Every order is planned up front (its lines, its card token, its Idempotency-Key), so
the invariant checker knows exactly what should exist and, where it is decided by
the inputs alone, how each order must end. Placing retries a failed request with
the *same* key until it gets an answer: a POST whose answer was lost (a killed
order service, a terminated database connection) is then replayed, never doubled.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.shop import Shop

# Sellable quantities set at the start of every scenario (PUT /stock), so the
# checker can do the arithmetic. PLENTY never runs out; EMPTY always rejects.
PLENTY = 10_000
PLENTIFUL_SKUS = ("KEYBOARD-01", "MOUSE-01", "MONITOR-27", "USB-C-HUB")
SCARCE_SKU = "HEADSET-01"  # contended: some orders get it, some do not
SCARCE_STOCK = 6
EMPTY_SKU = "WEBCAM-01"

APPROVED = "tok_visa"
DECLINED = "tok_chargeDeclined"
FLAKY = "tok_gatewayTimeout"  # two transient failures, then authorized (~6 s of retries)

RETRYABLE_STATUSES = {500, 502, 503, 504}


@dataclass(frozen=True)
class PlannedOrder:
    key: str
    items: tuple[tuple[str, int], ...]
    token: str

    def body(self) -> dict[str, Any]:
        return {
            "customer_id": f"cust-{self.key[-8:]}",
            "email": f"buyer-{self.key[-8:]}@example.com",
            "items": [{"sku": sku, "quantity": qty} for sku, qty in self.items],
            "payment_token": self.token,
        }

    @property
    def expected_status(self) -> str | None:
        """How the order must end, when its inputs alone decide it."""
        if self.token == DECLINED or any(sku == EMPTY_SKU for sku, _ in self.items):
            return "CANCELLED"
        if any(sku == SCARCE_SKU for sku, _ in self.items):
            return None  # depends on who got the scarce stock first
        return "CONFIRMED"


def initial_stock() -> dict[str, int]:
    return {
        **dict.fromkeys(PLENTIFUL_SKUS, PLENTY),
        SCARCE_SKU: SCARCE_STOCK,
        EMPTY_SKU: 0,
    }


def plan_orders(
    count: int, *, flaky: int = 1, flaky_first: bool = False, seed: int | None = None
) -> list[PlannedOrder]:
    """``count`` orders: mostly approved, ~1/5 declined, ~1/8 out of stock, some
    contending for the scarce SKU, and ``flaky`` with the gateway-timeout token
    (placed first with ``flaky_first``, anywhere otherwise)."""
    rng = random.Random(seed)
    orders = []
    for n in range(count):
        skus = rng.sample(PLENTIFUL_SKUS, rng.choice((1, 1, 2)))
        items = [(sku, rng.randint(1, 3)) for sku in skus]
        roll = rng.random()
        if roll < 0.12:
            items.append((EMPTY_SKU, 1))
        elif roll < 0.25:
            items.append((SCARCE_SKU, 1))
        token = DECLINED if rng.random() < 0.2 else APPROVED
        if n < flaky:
            token = FLAKY
        orders.append(PlannedOrder(f"faults-{uuid.uuid4().hex}", tuple(items), token))
    rng.shuffle(orders)
    if flaky_first:
        orders.sort(key=lambda order: order.token != FLAKY)
    return orders


@dataclass
class Placement:
    planned: PlannedOrder
    order_id: str | None = None
    attempts: int = 0
    first_attempt_at: float | None = None  # time.monotonic() when it was first sent
    first_attempt_seconds: float | None = None  # latency of the first answer (any status)
    errors: Counter[str] = field(default_factory=Counter)
    replayed: bool = False


class Load:
    """Places planned orders at a steady pace, retrying each until it is accepted."""

    def __init__(
        self,
        shop: Shop,
        planned: list[PlannedOrder],
        *,
        rate: float = 20.0,
        concurrency: int = 8,
        give_up_after: float = 120.0,
    ) -> None:
        self.shop = shop
        self.planned = planned
        self.rate = rate
        self.concurrency = concurrency
        self.give_up_after = give_up_after
        self.placements = [Placement(p) for p in planned]
        self.placed = asyncio.Event()  # set once every order has been accepted
        self._task: asyncio.Task[None] | None = None
        self.started_at = 0.0
        self.finished_at = 0.0

    @property
    def accepted(self) -> int:
        return sum(1 for p in self.placements if p.order_id is not None)

    async def set_stock(self) -> dict[str, int]:
        stock = initial_stock()
        for sku, available in stock.items():
            await self.shop.set_stock(sku, available)
        return stock

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="faults-load")

    async def wait_accepted(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.accepted < count:
            if self._task is not None and self._task.done():
                self._task.result()
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.accepted}/{count} orders accepted in {timeout}s")
            await asyncio.sleep(0.05)

    async def finish(self) -> None:
        assert self._task is not None
        await self._task

    async def run(self) -> None:
        self.started_at = time.monotonic()
        slots = asyncio.Semaphore(self.concurrency)

        async def one(placement: Placement) -> None:
            async with slots:
                await self._place(placement)

        tasks = []
        for placement in self.placements:
            tasks.append(asyncio.create_task(one(placement)))
            await asyncio.sleep(1 / self.rate)
        await asyncio.gather(*tasks)
        self.finished_at = time.monotonic()
        self.placed.set()

    async def _place(self, placement: Placement) -> None:
        body = placement.planned.body()
        deadline = time.monotonic() + self.give_up_after
        delay = 0.2
        while True:
            placement.attempts += 1
            started = time.monotonic()
            if placement.first_attempt_at is None:
                placement.first_attempt_at = started
            try:
                response = await self.shop.http.post(
                    f"{self.shop.system.url('order')}/orders",
                    json=body,
                    headers={"Idempotency-Key": placement.planned.key},
                    timeout=10,
                )
            except httpx.TransportError as exc:
                placement.errors[type(exc).__name__] += 1
            else:
                if placement.first_attempt_seconds is None:
                    placement.first_attempt_seconds = time.monotonic() - started
                if response.status_code == 202:
                    placement.order_id = str(response.json()["id"])
                    placement.replayed = placement.attempts > 1
                    return
                if response.status_code not in RETRYABLE_STATUSES:
                    raise AssertionError(
                        f"POST /orders answered {response.status_code}: {response.text}"
                    )
                placement.errors[str(response.status_code)] += 1
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"order {placement.planned.key} not accepted after"
                    f" {placement.attempts} attempts: {dict(placement.errors)}"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    # --- what was measured -----------------------------------------------------

    def errors(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for placement in self.placements:
            total.update(placement.errors)
        return total

    def latencies(self, start: float = 0.0, end: float = float("inf")) -> list[float]:
        """Latency of each first POST sent within ``[start, end]`` (monotonic)."""
        return sorted(
            p.first_attempt_seconds
            for p in self.placements
            if p.first_attempt_seconds is not None
            and p.first_attempt_at is not None
            and start <= p.first_attempt_at <= end
        )

    def latency_percentile(self, q: float, start: float = 0.0, end: float = float("inf")) -> float:
        samples = self.latencies(start, end)
        if not samples:
            return float("nan")
        index = min(len(samples) - 1, max(0, round(q * len(samples)) - 1))
        return samples[index]

    def order_ids(self) -> dict[str, PlannedOrder]:
        return {p.order_id: p.planned for p in self.placements if p.order_id is not None}
