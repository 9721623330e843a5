"""``python -m bench``: run the scenarios, print the table, write JSON and charts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench import report
from bench.context import FULL, QUICK, Context, Scale
from bench.infra import RabbitApi, server_boot_times
from bench.machine import describe
from bench.ui import Ui, console

SCENARIOS = ("floor", "throughput", "consistency", "decoupling", "burst", "outage")
RESULTS = Path(__file__).parent / "results"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of the shop on the real stack (services as processes, "
        "RabbitMQ, PostgreSQL, an SMTP sink). Figures, not assertions.",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"which to run, in this order: {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="the smoke scale (about 3 minutes here)"
    )
    parser.add_argument("--clients", type=int, help="closed-loop clients for throughput")
    parser.add_argument("--seconds", type=float, help="duration of throughput and of consistency")
    parser.add_argument(
        "--rate", type=float, help="offered orders/s for consistency (default: 60%% of throughput)"
    )
    parser.add_argument("--burst", type=int, help="orders in the burst")
    parser.add_argument("--burst-rate", type=float, help="offered orders/s of the burst")
    parser.add_argument("--outage-down", type=float, help="seconds the email service is down")
    parser.add_argument(
        "--inflight",
        type=int,
        default=32,
        help="max concurrent HTTP requests, like a gateway's connection pool; the rest wait "
        "in the client, and their latency from their due time shows it (default 32)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=10,
        help="times a POST answered 503 (or cut off) is retried after Retry-After, "
        "with the same Idempotency-Key (default 10; 0: count every 503 as an error)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every service, e.g. --env CONSUMER_CONCURRENCY=16",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy every service during throughput (needs py-spy on PATH: "
        "uv run --group bench --with py-spy python -m bench ...)",
    )
    parser.add_argument(
        "--no-census",
        action="store_true",
        help="floor: only the bare servers, not the per-order count (needs no services)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument(
        "--tag", default="", help="label stored with the results (e.g. an experiment)"
    )
    parser.add_argument("--no-charts", action="store_true")
    parser.add_argument(
        "--keep-logs", type=Path, help="write service logs here instead of a temp dir"
    )
    args = parser.parse_args(argv)
    for value in args.scenarios:
        if value not in SCENARIOS:
            parser.error(f"unknown scenario {value!r}; choose from {', '.join(SCENARIOS)}")
    return args


def scale_of(args: argparse.Namespace) -> Scale:
    scale = QUICK if args.quick else FULL
    overrides: dict[str, Any] = {}
    if args.clients:
        overrides["throughput_clients"] = args.clients
    if args.seconds:
        overrides["throughput_seconds"] = args.seconds
        overrides["throughput_warmup"] = min(scale.throughput_warmup, args.seconds / 5)
        overrides["consistency_seconds"] = args.seconds
    if args.rate:
        overrides["consistency_rate"] = args.rate
    if args.burst:
        overrides["burst_orders"] = args.burst
    if args.burst_rate:
        overrides["burst_rate"] = args.burst_rate
    if args.outage_down:
        overrides["outage_down"] = args.outage_down
    return replace(scale, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        import uvloop

        runner: Callable[[Awaitable[int]], int] = uvloop.run  # type: ignore[assignment]
    except ImportError:
        runner = asyncio.run  # type: ignore[assignment]
    return runner(run(args))


async def run(args: argparse.Namespace) -> int:
    selected = [s for s in SCENARIOS if s in (args.scenarios or SCENARIOS)]
    scale = scale_of(args)
    extra_env = dict(item.split("=", 1) for item in args.env)
    args.out.mkdir(parents=True, exist_ok=True)
    api = RabbitApi()
    machine = await _wait_for_servers(api)
    started = time.time()
    console.rule(f"[bold]shop benchmark[/] — {scale.name} — {', '.join(selected)}")
    console.print(report.machine_line(machine))
    ctx = Context(api=api, ui=Ui(), scale=scale, previous=report.load_latest(args.out))
    meta = {
        "scale": asdict(scale),
        "machine": machine,
        "service_env": extra_env,
        "inflight": args.inflight,
        "retries": args.retries,
        "tag": args.tag,
    }

    # Ctrl-C / SIGTERM: cancel the run so every context manager cleans up.
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, lambda: main_task.cancel() if main_task else None)

    try:
        with ctx.ui:
            await _run_all(ctx, selected, args, extra_env)
    except asyncio.CancelledError:
        console.print("[red]interrupted: cleaned up, writing what was measured[/]")
    finally:
        await api.close()

    meta["duration_s"] = round(time.time() - started, 1)
    report.write(args.out, ctx.results, meta)
    if not args.no_charts:
        try:
            from bench import charts
        except ImportError:
            console.print(
                "[yellow]matplotlib missing: no charts (uv run --group bench python -m bench)[/]"
            )
        else:
            for path in charts.draw_all(args.out, ctx.results, meta):
                console.print(f"chart: {path}")
    report.print_tables(ctx.results, meta)
    return 1 if any("error" in r for r in ctx.results.values()) else 0


async def _run_all(
    ctx: Context, selected: list[str], args: argparse.Namespace, extra_env: dict[str, str]
) -> None:
    from bench.scenarios import burst, consistency, decoupling, floor, outage, throughput

    floor_config = floor.FloorConfig(seconds=ctx.scale.floor_seconds)
    raw = None
    if "floor" in selected:
        # The bare servers first, before the shop's processes take their share.
        raw = await _guard(ctx, "floor", lambda: floor.run_raw(ctx.api, floor_config, ctx.ui))
    shop_scenarios = [s for s in selected if s != "floor"]
    if raw is not None and (args.no_census or "error" in raw):
        ctx.results["floor"] = raw if "error" in raw else {"summary": {"raw": raw}}
        raw = None
    if not shop_scenarios and raw is None:
        return

    from bench.stack import running_stack

    stack_cm = running_stack(
        ctx.api,
        extra_env=extra_env,
        inflight=args.inflight,
        retries=args.retries,
        keep_logs=args.keep_logs,
    )
    try:
        async with ctx.ui.phase("starting the shop (4 services)", total=1):
            ctx.stack = await stack_cm.__aenter__()
    except Exception as exc:
        ctx.ui.log(f"[red]the shop did not start: {exc!r}")
        if raw is not None:
            ctx.results["floor"] = {"summary": {"raw": raw, "per_order_error": repr(exc)}}
        for name in shop_scenarios:
            ctx.results[name] = {"error": f"the shop did not start: {exc!r}"}
        return
    try:
        if not await _smoke(ctx):
            failed = "the shop does not complete an order; see the service logs"
            if raw is not None:
                ctx.results["floor"] = {"summary": {"raw": raw, "per_order_error": failed}}
            for name in shop_scenarios:
                ctx.results[name] = {"error": failed}
            return
        if raw is not None:
            census = await _guard(
                ctx,
                "census",
                lambda: floor.census(
                    ctx.shop,
                    ctx.api,
                    ctx.ui,
                    orders=ctx.scale.census_orders,
                    rate=ctx.scale.census_rate,
                    idle_seconds=4.0 if ctx.scale.name == "quick" else 10.0,
                    settle_first=ctx.scale.name != "quick",
                ),
            )
            summary: dict[str, Any] = {"raw": raw}
            if "error" not in census:
                summary["per_order"] = census
                summary["ceiling"] = floor.ceiling(raw, census)
            else:
                summary["per_order_error"] = census["error"]
            ctx.results["floor"] = {"summary": summary}
        runners = {
            "throughput": throughput.run,
            "consistency": consistency.run,
            "decoupling": decoupling.run,
            "burst": burst.run,
            "outage": outage.run,
        }
        for name in shop_scenarios:
            profiler = None
            if name == "throughput" and args.profile:
                from bench.profile import Profiler

                profiler = Profiler(ctx.shop, args.out, seconds=ctx.scale.throughput_seconds)
                profiler.start()
            ctx.results[name] = await _guard(ctx, name, lambda n=name: runners[n](ctx))
            if profiler is not None:
                ctx.results[name].setdefault("summary", {})["profile"] = await profiler.finish()
    finally:
        async with ctx.ui.phase("stopping the shop", total=1):
            await stack_cm.__aexit__(*sys.exc_info())


async def _wait_for_servers(api: RabbitApi, timeout: float = 120.0) -> dict[str, Any]:
    """The servers are shared: someone may be restarting one. Wait a while for both."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await describe(api)
        except Exception as exc:
            if time.monotonic() > deadline:
                raise
            console.print(f"[yellow]waiting for PostgreSQL and RabbitMQ: {exc!r}")
            await asyncio.sleep(3)


async def _smoke(ctx: Context) -> bool:
    """One order end to end, then a gentle warm-up (pools filled, code paths hot)."""
    async with ctx.ui.phase("smoke: one order end to end", total=1):
        record = await ctx.shop.post_order()
        if not record.ok:
            ctx.ui.log(f"[red]POST /orders failed: {record.error}")
            return False
        try:
            await ctx.shop.sink.wait_complete(record.order_id or "", 60)
        except TimeoutError:
            ctx.ui.log("[red]the smoke order never got both emails; service logs:")
            for name, service in ctx.shop.services.items():
                ctx.ui.log(f"--- {name}\n{service.log_tail(15)}")
            return False
    from bench.load import open_loop

    seconds = 3 if ctx.scale.name == "quick" else 6
    async with ctx.ui.phase(f"warm-up: {seconds} s at 10 orders/s", seconds=seconds):
        posted = await open_loop(ctx.shop, rate=10, count=10 * seconds)
    errors = sum(1 for p in posted if not p.ok)
    if errors:
        ctx.ui.log(f"[yellow]warm-up: {errors} of {len(posted)} POSTs failed")
    await ctx.shop.wait_quiet(timeout=60)
    return True


async def _guard(
    ctx: Context, name: str, run: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run one scenario: a failure is recorded, not raised, and a restart of a
    shared server meanwhile (other work on this machine) is noted in its summary."""
    booted = await server_boot_times(ctx.api)
    try:
        result = await run()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        ctx.ui.log(f"[red]{name} failed: {exc!r}")
        console.print(traceback.format_exc())
        result = {"error": repr(exc)}
    now = await server_boot_times(ctx.api)
    restarted = [
        k
        for k in booted
        if booted[k] is not None and now[k] is not None and abs(now[k] - booted[k]) > 20  # type: ignore[operator]
    ]
    if restarted:
        note = f"{' and '.join(restarted)} restarted during this scenario (not by the bench)"
        ctx.ui.log(f"[yellow]{name}: {note}")
        result.setdefault("summary", {})["disturbed"] = note
    return result


if __name__ == "__main__":
    sys.exit(main())
