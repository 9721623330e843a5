"""The pieces of ``--compare`` and of running a build that need no server: the
capability probe's parsing, the process plan, pair order and B/A arithmetic."""

from __future__ import annotations

import pytest

from bench.build import Capabilities, parse_capabilities, process_plan
from bench.compare import (
    fix_rates,
    geomean,
    headline,
    pair_order,
    ratio,
    service_cpu,
    summarize_pairs,
)
from bench.context import QUICK
from bench.monitor import cpu_seconds

# `order-service --help` and `order-service serve --help`, as the two CLIs print them.
SUBCOMMANDS_TOP = """usage: order-service [-h] {serve,migrate} ...

positional arguments:
  {serve,migrate}
    serve          run the service (the default)
    migrate        apply the database migrations, then exit
"""
SUBCOMMANDS_SERVE = """usage: order-service serve [-h] [--role {api,worker,all}]

options:
  -h, --help            show this help message and exit
  --role {api,worker,all}
"""
POSITIONAL = """usage: order-service [-h] [{serve,migrate}]

positional arguments:
  {serve,migrate}

options:
  -h, --help       show this help message and exit
"""


def test_probe_reads_roles_from_serve_help() -> None:
    caps = parse_capabilities(SUBCOMMANDS_TOP, SUBCOMMANDS_SERVE)
    assert caps == Capabilities(serve=True, roles=("api", "worker", "all"))
    assert caps.split_order


def test_probe_of_an_older_cli_finds_no_roles() -> None:
    # The older parser takes `serve` as its positional command and prints its own help.
    caps = parse_capabilities(POSITIONAL, POSITIONAL)
    assert caps == Capabilities(serve=True, roles=())
    assert not caps.split_order


def test_probe_without_commands() -> None:
    caps = parse_capabilities("usage: order-service [-h]\n", "usage: order-service [-h]\n")
    assert caps == Capabilities(serve=False, roles=())


def test_roles_without_worker_do_not_split() -> None:
    assert not parse_capabilities(SUBCOMMANDS_TOP, "  --role {all}\n").split_order


def test_plan_splits_order_where_roles_exist() -> None:
    plan = process_plan(Capabilities(serve=True, roles=("api", "worker", "all")))
    assert [(p.name, p.service, p.args) for p in plan] == [
        ("order-api", "order", ("serve", "--role", "api")),
        ("order-worker", "order", ("serve", "--role", "worker")),
        ("inventory", "inventory", ("serve", "--role", "all")),
        ("payment", "payment", ("serve", "--role", "all")),
        ("email", "email", ("serve", "--role", "all")),
    ]
    http = {p.name for p in plan if p.http}
    assert "order-worker" not in http
    assert "order-api" in http
    # One process per service migrates: the worker, not the API.
    assert [p.name for p in plan if p.migrates] == ["order-worker", "inventory", "payment", "email"]


def test_plan_of_an_older_build_is_one_process_per_service() -> None:
    plan = process_plan(Capabilities(serve=True, roles=()))
    assert [(p.name, p.args, p.http, p.migrates) for p in plan] == [
        (name, ("serve",), True, True) for name in ("order", "inventory", "payment", "email")
    ]
    assert process_plan(Capabilities(serve=False, roles=()))[0].args == ()


def test_pairs_alternate_which_side_goes_first() -> None:
    assert [pair_order(i) for i in range(4)] == [
        ("A", "B"),
        ("B", "A"),
        ("A", "B"),
        ("B", "A"),
    ]


def test_ratio_and_its_missing_values() -> None:
    assert ratio(30.0, 10.0) == 3.0
    assert ratio(1.0, 3.0) == 0.333
    assert ratio(None, 3.0) is None
    assert ratio(3.0, None) is None
    assert ratio(3.0, 0.0) is None
    assert ratio(float("nan"), 3.0) is None


def test_geomean_of_ratios() -> None:
    assert geomean([2.0, 0.5]) == 1.0
    assert geomean([4.0, 1.0]) == 2.0
    assert geomean([]) is None


def test_service_cpu_counts_order_once() -> None:
    per_order = {
        "order": 16.0,
        "order-api": 6.0,
        "order-worker": 10.0,
        "inventory": 11.0,
        "payment": 7.0,
        "email": 19.0,
        "postgres": 11.0,
        "bench client": 4.0,
    }
    assert service_cpu(per_order) == 53.0
    assert service_cpu({}) is None


def test_headline_of_throughput_has_the_ratio_to_the_ceiling() -> None:
    summary = {
        "orders_per_s": 24.4,
        "end_to_end_ms": {"p99": 3726.0},
        "post_latency_ms": {"p99": 1066.0},
        "cpu_ms_per_order": {
            "order": 16.0,
            "order-api": 6.0,
            "order-worker": 10.0,
            "inventory": 11.0,
            "payment": 7.0,
            "email": 19.0,
        },
    }
    h = headline("throughput", summary, ceiling=314.0)
    assert h["orders_per_s"] == 24.4
    assert h["service_cpu_ms_per_order"] == 53.0
    assert h["order-api_cpu_ms_per_order"] == 6.0
    assert h["order-worker_cpu_ms_per_order"] == 10.0
    single = headline("throughput", {"cpu_ms_per_order": {"order": 16.0}}, ceiling=None)
    assert single["order-api_cpu_ms_per_order"] is None
    assert h["ratio_to_ceiling"] == pytest.approx(0.078)
    assert h["end_to_end_p99_ms"] == 3726.0
    assert headline("throughput", summary, ceiling=None)["ratio_to_ceiling"] is None


def test_headline_of_a_failed_scenario_is_empty_figures() -> None:
    h = headline("burst", {}, ceiling=100.0)
    assert h["orders_per_s"] is None
    assert h["ratio_to_ceiling"] is None


def _pair(a: float, b: float, cpu_a: float, cpu_b: float) -> dict[str, object]:
    return {
        "headline": {
            "A": {"throughput": {"orders_per_s": a, "service_cpu_ms_per_order": cpu_a}},
            "B": {"throughput": {"orders_per_s": b, "service_cpu_ms_per_order": cpu_b}},
        }
    }


def test_summary_over_pairs() -> None:
    pairs = [_pair(20.0, 60.0, 50.0, 10.0), _pair(10.0, 40.0, 60.0, 12.0)]
    row = summarize_pairs(pairs)["throughput"]["orders_per_s"]
    assert row["A"] == [20.0, 10.0]
    assert row["B"] == [60.0, 40.0]
    assert row["A_median"] == 15.0
    assert row["B_median"] == 50.0
    assert row["B/A_of_medians"] == 3.333
    assert row["B/A_per_pair"] == [3.0, 4.0]
    assert row["B/A_geomean"] == pytest.approx(3.464, abs=0.001)
    assert row["B/A_range"] == [3.0, 4.0]
    cpu = summarize_pairs(pairs)["throughput"]["service_cpu_ms_per_order"]
    assert cpu["B/A_per_pair"] == [0.2, 0.2]


def test_summary_skips_a_side_without_a_figure() -> None:
    pairs = [_pair(20.0, 60.0, 50.0, 10.0)]
    pairs[0]["headline"]["B"]["throughput"]["orders_per_s"] = None  # type: ignore[index]
    row = summarize_pairs(pairs)["throughput"]["orders_per_s"]
    assert row["B"] == []
    assert row["B_median"] is None
    assert row["B/A_per_pair"] == []
    assert row["B/A_geomean"] is None


def test_open_loop_rates_are_fixed_after_the_first_side() -> None:
    results = {
        "consistency": {"summary": {"offered_per_s": 15.0}},
        "decoupling": {"summary": {"fast": {"offered_per_s": 10.0}}},
        "outage": {"summary": {"offered_per_s": 9.0}},
    }
    fixed = fix_rates(QUICK, results)
    assert (fixed.consistency_rate, fixed.decoupling_rate, fixed.outage_rate) == (15.0, 10.0, 9.0)
    # A rate given on the command line stays.
    given = fix_rates(fixed, {"consistency": {"summary": {"offered_per_s": 99.0}}})
    assert given.consistency_rate == 15.0
    assert fix_rates(QUICK, {}) is QUICK


def test_cpu_seconds_weights_each_sample_by_its_interval() -> None:
    samples = [
        {"t": 0.5, "cpu": {"order": 1.0}},
        {"t": 1.5, "cpu": {"order": 0.5}},
        {"t": 2.0, "cpu": {"order": 2.0}},
    ]
    assert cpu_seconds(samples) == {"order": 0.5 + 0.5 + 1.0}
    assert cpu_seconds(samples, start=1.0) == {"order": 0.5 + 1.0}


def test_which_way_is_better() -> None:
    from bench.compare import higher_is_better

    assert higher_is_better("orders_per_s")
    assert higher_is_better("accepted_per_s")
    assert higher_is_better("ratio_to_ceiling")
    assert higher_is_better("ceiling_combined")
    assert not higher_is_better("service_cpu_ms_per_order")
    assert not higher_is_better("drain_s")
    assert not higher_is_better("commits_per_order")


def test_monitor_stops_even_if_a_sampler_swallows_its_cancellation() -> None:
    import asyncio

    from bench.monitor import Monitor

    class Cpu:
        def reset(self) -> None: ...

        def sample(self) -> dict[str, float]:
            return {"machine": 0.0}

    class Sink:
        total = 0

    class Shop:
        cpu = Cpu()
        sink = Sink()

        async def queue_depths(self) -> dict[str, int]:
            inside.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:  # as a client library racing in wait_for may
                return {}
            return {}

        async def refresh_cpu_groups(self) -> None: ...

    class Api:
        async def queues(self, vhost: str) -> dict[str, dict[str, int]]:
            return {}

    Shop.box = type("Box", (), {"vhost": "v"})()  # type: ignore[attr-defined]

    inside = asyncio.Event()

    async def run() -> int:
        async with Monitor(Shop(), Api(), interval=0.01) as monitor:  # type: ignore[arg-type]
            await inside.wait()  # the sampler is in queue_depths when the monitor stops
        return len(monitor.samples)

    assert asyncio.run(asyncio.wait_for(run(), 5)) == 0


def test_rss_of_this_process_and_of_a_gone_one() -> None:
    import os

    from bench.machine import process_rss_mib

    got = process_rss_mib(os.getpid())
    assert got is not None
    rss, peak = got
    assert 0 < rss <= peak
    assert process_rss_mib(2**22 + 12345) is None  # above pid_max: never a process


def test_memory_headline_and_row() -> None:
    from bench.report import summary_rows

    summary = {
        "max_rss_mib": {"order-api": 90.5, "order-worker": 101.0, "email": 80.0},
        "max_rss_mib_by_service": {"order": 191.5, "email": 80.0},
        "services_total_mib": 271.5,
    }
    figures = headline("memory", summary, ceiling=None)
    assert figures["max_rss_mib_services_total"] == 271.5
    assert figures["max_rss_mib_order"] == 191.5
    assert figures["max_rss_mib_order-worker"] == 101.0
    assert figures["max_rss_mib_inventory"] is None
    rows = summary_rows({"memory": {"summary": summary}})
    assert rows[0][0] == "memory"
    assert "order-worker 101" in rows[0][2]


def test_teardown_finishes_although_cancelled_twice() -> None:
    import asyncio

    from bench.infra import finish_despite_cancel

    steps: list[str] = []

    async def cleanup() -> str:
        for step in ("processes", "users", "databases"):
            await asyncio.sleep(0.02)
            steps.append(step)
        return "done"

    async def run() -> None:
        await finish_despite_cancel(cleanup())

    async def main() -> None:
        task = asyncio.create_task(run())
        for _ in range(2):  # Ctrl-C, then Ctrl-C again during the teardown
            await asyncio.sleep(0.01)
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert steps == ["processes", "users", "databases"]
