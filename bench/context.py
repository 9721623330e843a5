"""What every scenario gets: the servers, the running shop, the UI, the scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.build import Build
from bench.infra import RabbitApi
from bench.stack import Stack
from bench.ui import Ui


@dataclass(frozen=True)
class Scale:
    name: str
    floor_seconds: float
    census_orders: int
    census_rate: float
    throughput_clients: int
    throughput_seconds: float
    throughput_warmup: float
    consistency_rate: float | None  # None: consistency_share of the measured throughput
    consistency_seconds: float
    decoupling_rate: float | None  # None: 40 % of the measured throughput
    decoupling_seconds: float
    slow_smtp_delay: float
    burst_orders: int
    burst_rate: float
    outage_rate: float | None  # None: 40 % of the measured throughput
    outage_before: float
    outage_down: float
    outage_after: float
    drain_timeout: float
    # consistency's offered rate as a share of the measured throughput (when no
    # --rate is given): 0.5 for "half the sustained rate".
    consistency_share: float = 0.6


FULL = Scale(
    name="full",
    floor_seconds=6.0,
    census_orders=200,
    census_rate=8.0,
    throughput_clients=64,
    throughput_seconds=100.0,
    throughput_warmup=10.0,
    consistency_rate=None,
    consistency_seconds=45.0,
    decoupling_rate=None,
    decoupling_seconds=20.0,
    slow_smtp_delay=5.0,
    # The brief's burst is 10,000 orders at 1,000/s: pass --burst 10000. The
    # default keeps the full run near ten minutes on a 2-core machine, where
    # draining 10,000 orders alone takes about a quarter of an hour.
    burst_orders=3000,
    burst_rate=1000.0,
    outage_rate=None,
    outage_before=15.0,
    outage_down=30.0,
    outage_after=30.0,
    drain_timeout=1500.0,
)

QUICK = Scale(
    name="quick",
    floor_seconds=1.0,
    census_orders=40,
    census_rate=8.0,
    throughput_clients=32,
    throughput_seconds=15.0,
    throughput_warmup=3.0,
    consistency_rate=None,
    consistency_seconds=8.0,
    decoupling_rate=None,
    decoupling_seconds=5.0,
    slow_smtp_delay=5.0,
    burst_orders=200,
    burst_rate=500.0,
    outage_rate=None,
    outage_before=5.0,
    outage_down=5.0,
    outage_after=4.0,
    drain_timeout=120.0,
)

# Offered load when no throughput figure is known yet (a run without "throughput"
# and no earlier one at this scale): modest, so that it stays below capacity.
DEFAULT_RATE = {"full": 10.0, "quick": 5.0}


@dataclass
class Context:
    api: RabbitApi
    ui: Ui
    scale: Scale
    build: Build
    stack: Stack | None = None
    results: dict[str, Any] = field(default_factory=dict)
    # bench/results/latest.json as it was before this run (for rates derived from
    # an earlier throughput figure when this run does not measure it).
    previous: dict[str, Any] = field(default_factory=dict)

    @property
    def shop(self) -> Stack:
        assert self.stack is not None
        return self.stack

    def measured_throughput(self) -> float | None:
        """Sustained orders/s: from this run, else from the last run at the same scale."""
        result = self.results.get("throughput")
        if result and result.get("summary", {}).get("orders_per_s"):
            return float(result["summary"]["orders_per_s"])
        earlier = self.previous.get("scenarios", {}).get("throughput", {})
        if earlier.get("scale") == self.scale.name and earlier.get("summary", {}).get(
            "orders_per_s"
        ):
            return float(earlier["summary"]["orders_per_s"])
        return None

    def ceiling(self) -> tuple[dict[str, Any] | None, str]:
        """The floor's ceiling (orders/s) for the ratios, and where it comes from:
        this run's floor (its census is of the services measured), else the last
        floor stored in the results directory (of whichever code ran it)."""
        here = self.results.get("floor", {}).get("summary", {}).get("ceiling")
        if here:
            return dict(here), "this run"
        earlier = self.previous.get("scenarios", {}).get("floor", {})
        stored = earlier.get("summary", {}).get("ceiling")
        if stored:
            return dict(stored), f"stored floor of {earlier.get('date', '?')}"
        return None, ""
