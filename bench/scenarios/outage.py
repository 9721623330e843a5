"""Scenario 6, outage: the email service is down (SIGTERM) for a while under load.

The other services should not notice: POST latency, POST → CONFIRMED and the
confirmation rate before, during and after the outage are compared. The email
backlog (``email.events``) grows while it is down and drains once it is back.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.context import Context
from bench.load import open_loop, post_counts, status_times
from bench.monitor import Monitor
from bench.scenarios.consistency import pick_rate
from bench.stack import Posted
from bench.stats import per_second, rnd, summarize


async def run(ctx: Context) -> dict[str, Any]:
    shop, scale = ctx.shop, ctx.scale
    rate = pick_rate(ctx, scale.outage_rate, 0.4)
    seconds = scale.outage_before + scale.outage_down + scale.outage_after
    await shop.wait_quiet()
    posted: list[Posted] = []
    marks: dict[str, float] = {}
    emails_before = shop.sink.total
    dup_before = shop.sink.duplicates

    def counters() -> dict[str, float]:
        return {"posted": len(posted)}

    def status() -> str:
        state = "email DOWN" if "down" in marks and "up" not in marks else "email up"
        depth = monitor.latest().get("ready", {}).get("email.events", 0)
        return f"{state}, email.events={depth}, {len(posted)} posted"

    monitor = Monitor(shop, ctx.api, counters=counters)

    async def outage() -> None:
        await asyncio.sleep(scale.outage_before)
        marks["down"] = monitor.now()
        marks["down_wall"] = time.time()
        await shop.services["email"].stop()
        marks["stopped"] = monitor.now()
        await asyncio.sleep(max(0.0, scale.outage_down - (monitor.now() - marks["down"])))
        marks["restart"] = monitor.now()
        await shop.restart("email")
        marks["up"] = monitor.now()
        marks["up_wall"] = time.time()
        await asyncio.sleep(scale.outage_after)
        stop.set()

    stop = asyncio.Event()
    started_wall = time.time()
    async with monitor:
        async with ctx.ui.phase(
            f"outage: {rate:g}/s, email down {scale.outage_down:g}s", seconds=seconds, status=status
        ):
            # Until the email service has been back for ``outage_after`` seconds.
            load = asyncio.create_task(
                open_loop(shop, rate=rate, count=10**9, on_posted=posted.append, stop=stop)
            )
            try:
                await outage()
            finally:
                stop.set()  # also when the restart failed: no load left behind
                await load
        load_end = monitor.now()
        load_end_wall = time.time()
        ids = [p.order_id for p in posted if p.ok and p.order_id]
        missing = 0

        async def wait(order_id: str) -> None:
            nonlocal missing
            try:
                await shop.sink.wait_complete(order_id, scale.drain_timeout)
            except TimeoutError:
                missing += 1

        async with ctx.ui.phase("outage: email backlog drain", total=1, status=status):
            await asyncio.gather(*(wait(i) for i in ids))
            emails_done = monitor.now()
            await shop.wait_quiet(timeout=60, settle=1.0)
        await asyncio.sleep(1.0)

    async with ctx.ui.phase("outage: reading order histories", total=len(ids)):
        orders = await shop.orders(ids)

    def phase_of(wall: float) -> str:
        if wall < marks["down_wall"]:
            return "before"
        if wall < marks["up_wall"]:
            return "during"
        return "after"

    phases: dict[str, dict[str, list[float]]] = {
        k: {"post": [], "confirm": []} for k in ("before", "during", "after")
    }
    confirmed_at = []
    for p in posted:
        if not p.ok or p.order_id is None:
            continue
        bucket = phases[phase_of(p.sent_wall)]
        bucket["post"].append(p.latency)
        order = orders.get(p.order_id)
        if order and order["status"] == "CONFIRMED":
            at = status_times(order).get("CONFIRMED")
            if at is not None:
                bucket["confirm"].append(at - p.sent_wall)
                confirmed_at.append(at)
    by_phase = {}
    for name, data in phases.items():
        span = {
            "before": marks["down_wall"] - started_wall,
            "during": marks["up_wall"] - marks["down_wall"],
            "after": load_end_wall - marks["up_wall"],
        }[name]
        confirmed_in = [t for t in confirmed_at if phase_of(t) == name and t <= load_end_wall]
        by_phase[name] = {
            "post_latency_ms": summarize(data["post"]),
            "post_to_confirmed_ms": summarize(data["confirm"]),
            "confirmed_per_s": rnd(len(confirmed_in) / max(span, 1e-6)),
        }
    # Backlog drain: from the email service being ready again to email.events empty.
    drained_at = None
    for sample in monitor.samples:
        if sample["t"] >= marks["up"] and sample["ready"].get("email.events", 1) == 0:
            drained_at = sample["t"]
            break
    email_depths = [s["ready"].get("email.events", 0) for s in monitor.samples]
    summary = {
        "offered_per_s": rate,
        "seconds": rnd(load_end, 1),
        "email_down_s": rnd(marks["up"] - marks["down"], 1),
        "email_stop_s": rnd(marks["stopped"] - marks["down"], 2),
        "email_restart_to_ready_s": rnd(marks["up"] - marks["restart"], 1),
        **post_counts(posted),
        "by_phase": by_phase,
        "email_queue_peak": max(email_depths, default=0),
        "backlog_drain_s": rnd(drained_at - marks["up"], 1) if drained_at is not None else None,
        "all_emails_s_after_restart": rnd(emails_done - marks["up"], 1),
        "orders_without_both_emails": missing,
        "emails": shop.sink.total - emails_before,
        "emails_expected": 2 * len(ids),
        "duplicate_emails": shop.sink.duplicates - dup_before,
        "duplicate_examples": shop.sink.repeated[dup_before:][:10],
    }
    return {
        "summary": summary,
        "series": {
            "marks": {k: v for k, v in marks.items() if not k.endswith("_wall")},
            "load_end": load_end,
            "confirmed_per_s": per_second(
                confirmed_at, started_wall, started_wall + emails_done + 2
            ),
            "posted_per_s": per_second(
                (p.sent_wall for p in posted), started_wall, started_wall + emails_done + 2
            ),
            "emails_per_s": per_second(
                (t for t in shop.sink.arrivals if t >= started_wall),
                started_wall,
                started_wall + emails_done + 2,
            ),
            "samples": monitor.samples,
        },
    }
