"""Scenario 5, burst: many orders offered at once (open loop), then the drain.

Checks what a burst must not do (errors, lost orders, duplicate effects: emails
sent twice, orders placed twice, stock taken or payments authorized more than
once per confirmed order, counted in the services' databases) and
measures what it does: POST latency, queue depths over time (every 0.5 s), and
how long the shop needs after the burst until every order is final with both
emails sent and every queue is empty.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench.context import Context
from bench.load import open_loop, post_counts
from bench.monitor import Monitor
from bench.stack import DLQS, Posted, Stack
from bench.stats import per_second, rnd, summarize

VERIFY_SAMPLE = 300


async def run(ctx: Context) -> dict[str, Any]:
    shop, scale = ctx.shop, ctx.scale
    await shop.wait_quiet()
    count, rate = scale.burst_orders, scale.burst_rate
    posted: list[Posted] = []
    emails_before = shop.sink.total
    duplicates_before = shop.sink.duplicates
    effects_before = await shop.effects()
    completed = 0

    def counters() -> dict[str, float]:
        return {"posted": len(posted), "completed": completed}

    monitor = Monitor(shop, ctx.api, counters=counters)
    started_wall = time.time()
    async with monitor:
        async with ctx.ui.phase(
            f"burst: {count} orders at {rate:g}/s",
            total=count,
            status=lambda: f"{sum(1 for p in posted if not p.ok)} errors",
        ) as phase:

            def on_posted(record: Posted) -> None:
                posted.append(record)
                phase.advance()

            await open_loop(shop, rate=rate, count=count, on_posted=on_posted)
        offered_done = time.time()
        posts_done_t = monitor.now()
        ids = [p.order_id for p in posted if p.ok and p.order_id]
        missing = 0

        async def wait(order_id: str) -> None:
            nonlocal completed, missing
            try:
                await shop.sink.wait_complete(order_id, scale.drain_timeout)
                completed += 1
            except TimeoutError:
                missing += 1

        async with ctx.ui.phase(
            "burst: drain",
            total=len(ids),
            status=lambda: f"{completed}/{len(ids)} final+emailed, queues {_depths(monitor)}",
        ) as phase:

            async def progress() -> None:
                while True:
                    phase.done = completed
                    await asyncio.sleep(0.25)

            ticker = asyncio.create_task(progress())
            await asyncio.gather(*(wait(i) for i in ids))
            ticker.cancel()
            await shop.wait_quiet(timeout=60, settle=1.0)
        await asyncio.sleep(1.0)  # a last sample of empty queues
    # Independent check of final state over HTTP: a random sample plus every straggler.
    stragglers = [i for i in ids if shop.sink.complete_at(i) is None]
    sample = random.sample(ids, min(VERIFY_SAMPLE, len(ids))) + stragglers
    async with ctx.ui.phase("burst: verifying over HTTP", total=len(sample)):
        orders = await shop.orders(sample)
    statuses: dict[str, int] = {}
    for order in orders.values():
        status = order["status"] if order else "UNKNOWN"
        statuses[status] = statuses.get(status, 0) + 1
    dlq = {q: v for q, v in (await shop.queue_depths()).items() if q in DLQS}
    effects = _effects(effects_before, await shop.effects(), ids, shop)
    accepted = [p for p in posted if p.ok]
    emails = shop.sink.total - emails_before
    completions = [shop.sink.complete_at(i) for i in ids]
    last_completion = max((c for c in completions if c), default=offered_done)
    summary = {
        "offered": count,
        "offered_per_s": rate,
        "offer_span_s": rnd(offered_done - started_wall, 2),
        **post_counts(posted),
        "error_kinds": _error_kinds(posted),
        "post_latency_ms": summarize(p.latency for p in accepted),
        "post_latency_incl_client_queue_ms": summarize(
            p.sent - p.scheduled + p.latency for p in accepted
        ),
        "accepted_per_s": rnd(
            len(accepted)
            / max(max((p.sent_wall + p.latency for p in accepted), default=1) - started_wall, 1e-6)
        ),
        "final_with_both_emails": completed,
        "lost": len(accepted) - completed,
        "emails": emails,
        "emails_expected": 2 * len(accepted),
        "duplicate_emails": shop.sink.duplicates - duplicates_before,
        "duplicate_examples": shop.sink.repeated[duplicates_before:][:10],
        "verified_statuses": statuses,
        "effects": effects,
        "dead_lettered": sum(dlq.values()),
        "drain_s_after_last_post": rnd(last_completion - offered_done, 1),
        "completion_span_s": rnd(last_completion - started_wall, 1),
        "completed_per_s_overall": rnd(completed / max(last_completion - started_wall, 1e-6)),
        "peak_ready": monitor.peak_depths(),
        "cpu_cores": monitor.cpu_average(0, posts_done_t + 1e9),
    }
    if completed:
        # From the first POST until the queues were empty: what the burst cost.
        summary["cpu_ms_per_order"] = {
            k: round(v * 1000 / completed, 1)
            for k, v in sorted(monitor.cpu_seconds().items())
            if k not in ("machine", "other", "postgres (all dbs)")
        }
    return {
        "summary": summary,
        "series": {
            "completed_per_s": per_second(
                (c for c in completions if c), started_wall, last_completion + 1
            ),
            "accepted_per_s": per_second(
                (p.sent_wall + p.latency for p in accepted), started_wall, last_completion + 1
            ),
            "samples": monitor.samples,
            "posts_done_t": posts_done_t,
        },
    }


def _depths(monitor: Monitor) -> str:
    ready = monitor.latest().get("ready", {})
    return " ".join(
        f"{q.split('.')[0][:3]}={ready.get(q, 0)}" for q in sorted(ready) if not q.endswith(".dlq")
    )


def _error_kinds(posted: list[Posted]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for p in posted:
        if not p.ok:
            key = str(p.status) if p.status else (p.error or "transport").split("(")[0]
            kinds[key] = kinds.get(key, 0) + 1
    return kinds


def _effects(
    before: dict[str, int | None], after: dict[str, int | None], ids: list[str], shop: Stack
) -> dict[str, int | None]:
    """Effects in the databases against what the accepted orders should have
    caused: one order each, and per confirmed order (its ``confirmed`` email
    arrived) one unit of stock taken (every burst order is for one unit) and one
    authorized payment. ``extra_*`` above 0 are duplicate effects; None: not
    counted (that build's schema differs, or a query failed)."""

    def delta(key: str) -> int | None:
        a, b = after.get(key), before.get(key)
        return None if a is None or b is None else a - b

    mails = [shop.sink.orders.get(i) for i in set(ids)]
    confirmed = sum(1 for mail in mails if mail is not None and "confirmed" in mail.kinds)
    orders = delta("orders")
    taken = delta("stock_on_hand")
    taken = -taken if taken is not None else None
    charged = delta("authorized_payments")
    return {
        "confirmed_orders": confirmed,
        "orders_created": orders,
        "extra_orders": None if orders is None else orders - len(set(ids)),
        "stock_units_taken": taken,
        "extra_stock_units": None if taken is None else taken - confirmed,
        "payments_authorized": charged,
        "extra_payments": None if charged is None else charged - confirmed,
    }
