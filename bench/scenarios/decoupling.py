"""Scenario 4, decoupling: does a slow SMTP server slow down placing orders?

The same open-loop load twice: with the SMTP sink answering at once, then with
it taking ``slow_smtp_delay`` seconds per message. POST latency and
POST → CONFIRMED are compared; the email backlog is what is expected to grow.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.context import Context
from bench.load import post_counts
from bench.scenarios.consistency import latency_report, offer, pick_rate
from bench.stack import Posted
from bench.stats import summarize


async def _phase(ctx: Context, label: str, delay: float, rate: float) -> dict[str, Any]:
    shop, scale = ctx.shop, ctx.scale
    await shop.sink.set_delay(delay)
    posted, monitor, _ = await offer(
        ctx, f"decoupling: {label} smtp, {rate:g}/s", rate, scale.decoupling_seconds
    )
    accepted: list[Posted] = [p for p in posted if p.ok]
    # Confirmation does not wait for email: statuses settle within seconds either way.
    await asyncio.sleep(3)
    orders = await shop.orders([p.order_id for p in accepted if p.order_id])
    report = latency_report(posted, orders, shop.sink)
    report.pop("confirmed_at")
    email_depth = [s["ready"].get("email.events", 0) for s in monitor.samples]
    return {
        "smtp_delay_s": delay,
        "offered_per_s": rate,
        **post_counts(posted),
        "post_latency_ms": summarize(p.latency for p in accepted),
        "post_to_confirmed_ms": report["post_to_confirmed_ms"],
        "statuses": report["statuses"],
        "emails_sent_during_phase": sum(
            1 for t in shop.sink.arrivals if t >= min((p.sent_wall for p in posted), default=0)
        ),
        "email_queue_peak": max(email_depth, default=0),
        "cpu_cores": monitor.cpu_average(1, scale.decoupling_seconds),
        "_samples": monitor.samples,
    }


async def run(ctx: Context) -> dict[str, Any]:
    shop = ctx.shop
    await shop.wait_quiet()
    rate = pick_rate(ctx, ctx.scale.decoupling_rate, 0.4)
    fast = await _phase(ctx, "fast", 0.0, rate)
    await shop.wait_quiet()
    slow = await _phase(ctx, f"{ctx.scale.slow_smtp_delay:g}s", ctx.scale.slow_smtp_delay, rate)
    await shop.sink.set_delay(0.0)
    async with ctx.ui.phase("  draining the email backlog", seconds=None, total=1):
        drained = await shop.wait_quiet(timeout=ctx.scale.drain_timeout)
    series = {"fast": fast.pop("_samples"), "slow": slow.pop("_samples")}
    fp, sp = fast["post_latency_ms"], slow["post_latency_ms"]
    summary = {
        "fast": fast,
        "slow": slow,
        "post_p50_ratio_slow_over_fast": round(sp.get("p50", 0) / fp["p50"], 2)
        if fp.get("p50")
        else None,
        "post_p99_ratio_slow_over_fast": round(sp.get("p99", 0) / fp["p99"], 2)
        if fp.get("p99")
        else None,
        "backlog_drain_s_after_fast_smtp_back": round(drained, 1),
    }
    return {"summary": summary, "series": series}
