"""Scenario 2, throughput: sustained orders/s from POST to final state with both
emails accepted by the SMTP server, with N closed-loop clients."""

from __future__ import annotations

import time
from typing import Any

from bench.context import Context
from bench.load import ClosedLoopResult, closed_loop, post_counts
from bench.monitor import Monitor
from bench.stats import per_second, rnd, summarize, windowed_percentiles


async def run(ctx: Context) -> dict[str, Any]:
    shop, scale = ctx.shop, ctx.scale
    seconds, warmup = scale.throughput_seconds, scale.throughput_warmup
    await shop.wait_quiet()
    shop.posted.clear()
    started_wall = time.time()
    holder: dict[str, Any] = {}

    def counters() -> dict[str, float]:
        result = holder.get("result")
        if result is None:
            return {}
        return {"posted": len(result.posted), "completed": len(result.completions)}

    def status() -> str:
        sample = monitor.latest()
        done = sample.get("completed", 0)
        elapsed = max(time.time() - started_wall, 1e-6)
        cores = sample.get("cpu", {}).get("machine", 0)
        return f"{done} done, {done / elapsed:.0f}/s, machine cpu {cores:.1f} cores"

    holder["result"] = ClosedLoopResult()
    async with (
        Monitor(shop, ctx.api, counters=counters) as monitor,
        ctx.ui.phase(
            f"throughput: {scale.throughput_clients} clients", seconds=seconds, status=status
        ),
    ):
        result = await closed_loop(
            shop, clients=scale.throughput_clients, seconds=seconds, result=holder["result"]
        )
    end_wall = started_wall + seconds

    in_window = [
        (t, lat) for t, lat in result.completions if started_wall + warmup <= t <= end_wall
    ]
    window = seconds - warmup
    rate = len(in_window) / window
    posts_ok = [p for p in result.posted if p.ok]
    series_rate = per_second((t for t, _ in result.completions), started_wall, end_wall)
    post_rate = per_second((p.sent_wall for p in result.posted), started_wall, end_wall)
    latency_windows = windowed_percentiles(
        ((t - started_wall, lat) for t, lat in result.completions), 0, seconds, 5.0
    )
    cpu = monitor.cpu_average(warmup, seconds)
    summary: dict[str, Any] = {
        "clients": scale.throughput_clients,
        "seconds": seconds,
        "warmup_s": warmup,
        "orders_per_s": rnd(rate),
        "completed_in_window": len(in_window),
        **post_counts(result.posted),
        "errors": result.errors,
        "timeouts": result.timeouts,
        "post_latency_ms": summarize(p.latency for p in posts_ok),
        "end_to_end_ms": summarize(lat for _, lat in in_window),
        "cpu_cores": cpu,
        # CPU time per completed order: steadier than orders/s when other work
        # shares the machine (it is what an order costs, not what it got).
        "cpu_ms_per_order": {
            k: round(v * window * 1000 / len(in_window), 1)
            for k, v in cpu.items()
            if k not in ("machine", "other", "postgres (all dbs)") and in_window
        },
    }
    floor, source = ctx.ceiling()
    if floor:
        summary["ceiling_source"] = source
        for key in ("combined", "min_single_resource"):
            if floor.get(key):
                summary[f"ratio_to_ceiling_{key}"] = round(rate / floor[key], 3)
    return {
        "summary": summary,
        "series": {
            "completed_per_s": series_rate,
            "posted_per_s": post_rate,
            "end_to_end_ms_by_5s": latency_windows,
            "samples": monitor.samples,
        },
    }
