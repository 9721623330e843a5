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
from typing import TYPE_CHECKING, Any

from bench import report
from bench.build import Build, current_build, worktree_build
from bench.context import FULL, QUICK, Context, Scale
from bench.infra import RabbitApi, finish_despite_cancel, server_boot_times
from bench.machine import describe
from bench.ui import Ui, console

if TYPE_CHECKING:
    from bench.stack import Stack

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
    parser.add_argument(
        "--rate-share",
        type=float,
        help="without --rate: consistency's offered rate as a share of the measured "
        "throughput (default 0.6; 0.5 = half the sustained rate)",
    )
    parser.add_argument("--burst", type=int, help="orders in the burst")
    parser.add_argument("--burst-rate", type=float, help="offered orders/s of the burst")
    parser.add_argument("--outage-down", type=float, help="seconds the email service is down")
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=19,
        help="niceness of every service process but the one taking the orders, as "
        "`make run` starts them (Procfile: CPU_NICENESS=19): the front door first, the "
        "queue drained with what is left (default 19; 0: all equal)",
    )
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
        "--compare",
        metavar="REF",
        help="A/B: run the scenarios on REF's services (A, a git worktree of REF with its "
        "own environment) and on this tree's (B), in interleaved pairs; writes "
        "compare-*.json (not the per-scenario files)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=2,
        help="A/B pairs for --compare, each back to back, alternating which goes first (default 2)",
    )
    parser.add_argument(
        "--keep-logs", type=Path, help="write service logs here instead of a temp dir"
    )
    args = parser.parse_args(argv)
    if args.rate_share is not None and not 0 < args.rate_share <= 2:
        parser.error("--rate-share is a share of the throughput, e.g. 0.5")
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if args.compare and args.profile:
        parser.error("--profile measures one build: use it without --compare")
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
    if args.rate_share:
        overrides["consistency_share"] = args.rate_share
    if args.burst:
        overrides["burst_orders"] = args.burst
    if args.burst_rate:
        overrides["burst_rate"] = args.burst_rate
    if args.outage_down:
        overrides["outage_down"] = args.outage_down
    return replace(scale, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # The shop's libraries log with structlog (e.g. the broker users being set up):
    # in the bench's own process only warnings and errors, not over the progress bars.
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
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

    # Ctrl-C / SIGTERM: cancel the run so every context manager cleans up.
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, lambda: main_task.cancel() if main_task else None)
    # `kill -USR1 <pid>`: what every task is waiting for, on stderr (a run that hangs).
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)

    if args.compare:
        try:
            return await _compare(args, api, machine, selected, scale, extra_env)
        finally:
            await api.close()

    started = time.time()
    console.rule(f"[bold]shop benchmark[/] — {scale.name} — {', '.join(selected)}")
    console.print(report.machine_line(machine))
    ui = Ui()
    meta = {
        "scale": asdict(scale),
        "machine": machine,
        "service_env": extra_env,
        "inflight": args.inflight,
        "retries": args.retries,
        "tag": args.tag,
    }
    results: dict[str, Any] = {}
    interrupted = False
    try:
        with ui:
            build = await current_build()
            console.print(_build_line("services", build))
            meta["build"] = build.describe()
            ctx = Context(
                api=api, ui=ui, scale=scale, build=build, previous=report.load_latest(args.out)
            )
            results = ctx.results
            await _run_all(ctx, selected, args, extra_env)
    except asyncio.CancelledError:
        console.print("[red]interrupted: cleaned up, writing what was measured[/]")
        interrupted = True
    finally:
        await api.close()

    meta["duration_s"] = round(time.time() - started, 1)
    report.write(args.out, results, meta)
    if not args.no_charts:
        try:
            from bench import charts
        except ImportError:
            console.print(
                "[yellow]matplotlib missing: no charts (uv run --group bench python -m bench)[/]"
            )
        else:
            for path in charts.draw_all(args.out, results, meta):
                console.print(f"chart: {path}")
    report.print_tables(results, meta)
    if interrupted:
        return 130
    return 1 if any("error" in r for r in results.values()) else 0


def _dump_tasks() -> None:
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=sys.stderr)
        task.print_stack(limit=12, file=sys.stderr)
    sys.stderr.flush()


def _build_line(what: str, build: Build) -> str:
    processes = ", ".join(f"{p.name} ({' '.join(p.args) or 'no arguments'})" for p in build.plan)
    return f"{what}: {build.label} {build.commit} at {build.root}: {processes}"


async def _compare(
    args: argparse.Namespace,
    api: RabbitApi,
    machine: dict[str, Any],
    selected: list[str],
    scale: Scale,
    extra_env: dict[str, str],
) -> int:
    """A = REF's services, B = this tree's, in ``--pairs`` interleaved pairs."""
    from bench import compare
    from bench.scenarios import floor

    started = time.time()
    console.rule(
        f"[bold]shop benchmark A/B[/] — A {args.compare} vs B this tree — {scale.name} — "
        f"{', '.join(selected)} — {args.pairs} pair{'s' if args.pairs != 1 else ''}"
    )
    console.print(report.machine_line(machine))
    ui = Ui()
    previous = report.load_latest(args.out)
    document: dict[str, Any] = {
        "ref": args.compare,
        "ref_commit": _full_commit(args.compare) or "unknown",
        "started": started,
        "scenarios": selected,
        "pairs_asked": args.pairs,
        "scale": asdict(scale),
        "machine": machine,
        "service_env": extra_env,
        "worker_nice": args.worker_nice,
        "inflight": args.inflight,
        "retries": args.retries,
        "tag": args.tag,
        "pairs": [],
    }
    builds: dict[str, Build] = {}
    failed = False
    try:
        with ui:
            async with worktree_build(args.compare, log=ui.log) as reference:
                builds = {"A": reference, "B": await current_build()}
                document["builds"] = {k: b.describe() for k, b in builds.items()}
                for side, build in builds.items():
                    console.print(_build_line(f"{side}", build))
                raw = None
                if "floor" in selected:
                    # The bare servers once: they are the same for both sides.
                    probe = Context(api=api, ui=ui, scale=scale, build=builds["B"])
                    config = floor.FloorConfig(seconds=scale.floor_seconds)
                    raw = await _guard(probe, "floor", lambda: floor.run_raw(api, config, ui))
                    document["floor_raw"] = raw
                side_scale = scale
                for index in range(args.pairs):
                    order = compare.pair_order(index)
                    pair: dict[str, Any] = {
                        "pair": index + 1,
                        "order": list(order),
                        "started": time.time(),
                        "summaries": {},
                        "headline": {},
                        "errors": {},
                    }
                    document["pairs"].append(pair)
                    for side in order:
                        ui.log(f"pair {index + 1}: {side} = {builds[side].label}")
                        ctx = Context(
                            api=api, ui=ui, scale=side_scale, build=builds[side], previous=previous
                        )
                        logs = (
                            args.keep_logs / f"pair{index + 1}-{side}" if args.keep_logs else None
                        )
                        await _run_all(ctx, selected, args, extra_env, raw=raw, keep_logs=logs)
                        side_scale = compare.fix_rates(side_scale, ctx.results)
                        ceiling, source = ctx.ceiling()
                        combined = (ceiling or {}).get("combined")
                        pair["summaries"][side] = {
                            name: r.get("summary", {}) for name, r in ctx.results.items()
                        }
                        pair["headline"][side] = {
                            name: compare.headline(name, r.get("summary", {}), combined)
                            for name, r in ctx.results.items()
                        }
                        pair["errors"][side] = {
                            name: r["error"] for name, r in ctx.results.items() if "error" in r
                        }
                        pair.setdefault("ceiling_source", {})[side] = source
                        failed = failed or bool(pair["errors"][side])
                    pair["seconds"] = round(time.time() - pair["started"], 1)
                    compare.print_pair(pair, document["builds"])
    except asyncio.CancelledError:
        console.print("[red]interrupted: worktree removed, writing what was measured[/]")
        failed = True
    except Exception as exc:
        console.print(f"[red]compare failed: {exc!r}")
        console.print(traceback.format_exc())
        document["error"] = repr(exc)
        failed = True
    document["duration_s"] = round(time.time() - started, 1)
    complete = [p for p in document["pairs"] if set(p["headline"]) == {"A", "B"}]
    document["summary"] = compare.summarize_pairs(complete)
    path = compare.write(args.out, document)
    if complete and "builds" in document:
        compare.print_summary(document["summary"], document["builds"], len(complete))
    console.print(f"written: {path}")
    return 1 if failed else 0


def _full_commit(ref: str) -> str:
    import subprocess

    return subprocess.run(  # noqa: S603
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


async def _run_all(
    ctx: Context,
    selected: list[str],
    args: argparse.Namespace,
    extra_env: dict[str, str],
    *,
    raw: dict[str, Any] | None = None,
    keep_logs: Path | None = None,
) -> None:
    """The selected scenarios on one fresh stack of ``ctx.build``'s services.

    ``raw``: the bare servers' floor, if already measured (a compare measures it
    once for both sides); only the census then runs on this stack.
    """
    from bench.scenarios import burst, consistency, decoupling, floor, outage, throughput

    floor_config = floor.FloorConfig(seconds=ctx.scale.floor_seconds)
    if "floor" not in selected:
        raw = None
    elif raw is None:
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
        ctx.build,
        extra_env=extra_env,
        inflight=args.inflight,
        retries=args.retries,
        keep_logs=keep_logs or args.keep_logs,
        worker_nice=args.worker_nice,
    )
    try:
        processes = len(ctx.build.plan)
        async with ctx.ui.phase(
            f"starting the shop ({ctx.build.label}, {processes} processes)", total=1
        ):
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
            ctx.shop.reset_memory_peaks()
            try:
                ctx.results[name] = await _guard(ctx, name, lambda n=name: runners[n](ctx))
                if profiler is not None:
                    profile = await profiler.finish()
                    ctx.results[name].setdefault("summary", {})["profile"] = profile
            finally:
                if profiler is not None:
                    await profiler.close()
            if "summary" in ctx.results[name]:
                # Peak RSS per service process during this scenario (MiB).
                ctx.results[name]["summary"]["max_rss_mib"] = ctx.shop.window_peak_rss()
    finally:
        if ctx.stack is not None:
            with contextlib.suppress(Exception):
                ctx.stack.memory()
                ctx.results["memory"] = {"summary": _memory_summary(ctx.stack)}
        async with ctx.ui.phase("stopping the shop", total=1):
            await finish_despite_cancel(stack_cm.__aexit__(*sys.exc_info()))


def _memory_summary(shop: Stack) -> dict[str, Any]:
    """Peak RSS per service process over the life of the stack (start, smoke,
    census and every scenario): the kernel's VmHWM, a restarted process's peaks
    folded together."""
    peaks = dict(shop.run_peak_rss)
    by_service: dict[str, float] = {}
    for name, value in peaks.items():
        service = shop.plans[name].service
        by_service[service] = round(by_service.get(service, 0.0) + value, 1)
    return {
        "max_rss_mib": peaks,
        # A split service's processes added up (their peaks need not coincide:
        # an upper bound of the pair's peak), so builds with and without roles compare.
        "max_rss_mib_by_service": by_service,
        "services_total_mib": round(sum(peaks.values()), 1),
        "per_scenario_peaks_reset": shop.peaks_resettable,
    }


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
