"""Scenario 3, time to consistency: POST → CONFIRMED at a fixed offered load (open loop).

CONFIRMED time is the order's own history entry (server clock, same machine as
the client's), so reading it costs the measured run nothing: every order is
fetched once after the load stops.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.context import DEFAULT_RATE, Context
from bench.load import open_loop, post_counts, status_times
from bench.monitor import Monitor
from bench.stack import Posted, Stack
from bench.stats import per_second, rnd, summarize


def pick_rate(ctx: Context, fixed: float | None, share: float) -> float:
    if fixed:
        return fixed
    measured = ctx.measured_throughput()
    if measured:
        return max(1.0, round(measured * share, 0 if measured * share >= 10 else 1))
    return DEFAULT_RATE[ctx.scale.name]


async def offer(
    ctx: Context, label: str, rate: float, seconds: float
) -> tuple[list[Posted], Monitor, float]:
    """Open-loop load with a monitor and a progress bar; returns (posts, monitor, start wall)."""
    shop = ctx.shop
    count = int(rate * seconds)
    posted: list[Posted] = []
    started_wall = time.time()

    def counters() -> dict[str, float]:
        return {"posted": len(posted), "accepted": sum(1 for p in posted if p.ok)}

    def status() -> str:
        errors = sum(1 for p in posted if not p.ok)
        return f"{len(posted)}/{count} posted, {errors} errors, {shop.sink.total} emails"

    monitor = Monitor(shop, ctx.api, counters=counters)
    async with monitor, ctx.ui.phase(label, seconds=seconds, status=status):
        await open_loop(shop, rate=rate, count=count, on_posted=posted.append)
    return posted, monitor, started_wall


async def confirmations(
    ctx: Context, posted: list[Posted], timeout: float
) -> tuple[dict[str, dict[str, Any] | None], int]:
    """Wait until every accepted order has its emails (or ``timeout``), then fetch them."""
    shop = ctx.shop
    ids = [p.order_id for p in posted if p.ok and p.order_id]
    missing = 0

    async def wait(order_id: str) -> None:
        nonlocal missing
        try:
            await shop.sink.wait_complete(order_id, timeout)
        except TimeoutError:
            missing += 1

    async with ctx.ui.phase(
        "  waiting for every order", total=len(ids), status=lambda: f"{missing} late"
    ):
        await asyncio.gather(*(wait(i) for i in ids))
    async with ctx.ui.phase("  reading order histories", total=len(ids)):
        orders = await shop.orders(ids)
    return orders, missing


def latency_report(
    posted: list[Posted], orders: dict[str, dict[str, Any] | None], sink: Any
) -> dict[str, Any]:
    to_confirmed = []
    to_emails = []
    statuses: dict[str, int] = {}
    confirmed_at = []
    for p in posted:
        if not p.ok or p.order_id is None:
            continue
        order = orders.get(p.order_id)
        status = order["status"] if order else "UNKNOWN"
        statuses[status] = statuses.get(status, 0) + 1
        if order and status == "CONFIRMED":
            at = status_times(order).get("CONFIRMED")
            if at is not None:
                to_confirmed.append(at - p.sent_wall)
                confirmed_at.append(at)
        done = sink.complete_at(p.order_id)
        if done is not None:
            to_emails.append(done - p.sent_wall)
    return {
        "statuses": statuses,
        "post_to_confirmed_ms": summarize(to_confirmed),
        "post_to_all_emails_ms": summarize(to_emails),
        "confirmed_at": confirmed_at,
    }


async def run(ctx: Context) -> dict[str, Any]:
    shop: Stack = ctx.shop
    scale = ctx.scale
    rate = pick_rate(ctx, scale.consistency_rate, scale.consistency_share)
    await shop.wait_quiet()
    posted, monitor, started_wall = await offer(
        ctx, f"consistency: {rate:g} orders/s", rate, scale.consistency_seconds
    )
    orders, late = await confirmations(ctx, posted, scale.drain_timeout)
    report = latency_report(posted, orders, shop.sink)
    accepted = [p for p in posted if p.ok]
    span = max(p.sent_wall for p in posted) - min(p.sent_wall for p in posted) if posted else 1
    confirmed_at = sorted(report.pop("confirmed_at"))
    end = started_wall + scale.consistency_seconds
    in_window = [t for t in confirmed_at if started_wall <= t <= end]
    measured = ctx.measured_throughput()
    summary = {
        "offered_per_s": rate,
        # What the rate was derived from: --rate, else a share of the throughput
        # measured in this run (or the last at this scale), else a default.
        "rate_basis": (
            "fixed (--rate; in a compare, the first side's rate)"
            if scale.consistency_rate
            else f"{scale.consistency_share:g} × {measured:g}/s throughput"
            if measured
            else "default (no throughput measured)"
        ),
        "seconds": scale.consistency_seconds,
        **post_counts(posted),
        "achieved_post_per_s": rnd(len(posted) / max(span, 1e-6)),
        "confirmed_per_s_during_load": rnd(len(in_window) / scale.consistency_seconds),
        "late_or_missing": late,
        "post_latency_ms": summarize(p.latency for p in accepted),
        **report,
        "cpu_cores": monitor.cpu_average(2, scale.consistency_seconds),
    }
    confirmed = summary["confirmed_per_s_during_load"]
    if confirmed:
        summary["cpu_ms_per_order"] = {
            k: round(v * 1000 / confirmed, 1)
            for k, v in summary["cpu_cores"].items()
            if k not in ("machine", "other", "postgres (all dbs)")
        }
    return {
        "summary": summary,
        "series": {
            "confirmed_per_s": per_second(confirmed_at, started_wall, end + 10),
            "posted_per_s": per_second((p.sent_wall for p in posted), started_wall, end + 10),
            "post_to_confirmed_s": sorted(
                round(
                    status_times(orders[p.order_id]).get("CONFIRMED", float("nan")) - p.sent_wall, 4
                )
                for p in accepted
                if orders.get(p.order_id) and orders[p.order_id]["status"] == "CONFIRMED"  # type: ignore[index]
            ),
            "samples": monitor.samples,
        },
    }
