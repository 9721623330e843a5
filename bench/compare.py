"""``--compare REF``: the same scenarios on REF's services (A) and on this tree's
(B), in interleaved pairs, so an A/B is one command.

Each pair runs A and B back to back, each on a fresh stack (vhost, databases,
processes), alternating which goes first (A B, B A, A B, ...), so a slow stretch
of a shared machine weighs on both sides alike. The harness is always this
tree's; only the service processes differ. Open-loop rates are fixed by the
first side that derives them, so both sides are offered the same load.

The pure pieces (pair order, ratios, headline figures, the summary over pairs)
are tested in ``bench/tests``.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.context import Scale
from bench.monitor import ORDER_PARTS, SHOP_SERVICES
from bench.report import _clean, _fmt
from bench.ui import console

SIDES = ("A", "B")


def pair_order(index: int) -> tuple[str, str]:
    """Pair 0 runs A then B, pair 1 B then A, and so on."""
    return ("A", "B") if index % 2 == 0 else ("B", "A")


def ratio(b: float | None, a: float | None) -> float | None:
    """B/A, or None when either is missing or A is zero."""
    if a is None or b is None or a == 0 or _nan(a) or _nan(b):
        return None
    return round(b / a, 3)


def _nan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)


def geomean(values: list[float]) -> float | None:
    """Geometric mean (the mean of ratios that neither side dominates); None if empty."""
    kept = [v for v in values if v is not None and v > 0]
    if not kept:
        return None
    return round(math.exp(sum(math.log(v) for v in kept) / len(kept)), 3)


def service_cpu(per_order: dict[str, float] | None) -> float | None:
    """The four services' CPU ms per order (order counted once, its parts not again)."""
    if not per_order:
        return None
    present = [per_order[k] for k in SHOP_SERVICES if k in per_order]
    return round(sum(present), 1) if present else None


def headline(
    scenario: str, summary: dict[str, Any], ceiling: float | None
) -> dict[str, float | None]:
    """The figures compared for one scenario: orders/s, the services' CPU ms per
    order, the ratio of orders/s to the combined ceiling, and a few of its own."""
    s = summary
    cpu = s.get("cpu_ms_per_order") or {}
    out: dict[str, float | None] = {}
    rate: float | None = None
    if scenario == "floor":
        work = s.get("per_order") or {}
        c = s.get("ceiling") or {}
        broker = work.get("broker") or {}
        return {
            "ceiling_combined": c.get("combined"),
            "commits_per_order": work.get("commits_per_order"),
            "publishes_per_order": broker.get("publishes_per_order"),
            "deliveries_per_order": broker.get("deliveries_per_order"),
        }
    if scenario == "memory":
        # Per service (order = order-api + order-worker where split), then the
        # split order service's processes on their own.
        peaks = s.get("max_rss_mib") or {}
        services = s.get("max_rss_mib_by_service") or {}
        return {
            "max_rss_mib_services_total": s.get("services_total_mib"),
            **{f"max_rss_mib_{name}": services.get(name) for name in SHOP_SERVICES},
            **{f"max_rss_mib_{name}": peaks[name] for name in ORDER_PARTS if name in peaks},
        }
    if scenario == "throughput":
        rate = s.get("orders_per_s")
        out["end_to_end_p99_ms"] = (s.get("end_to_end_ms") or {}).get("p99")
        out["post_p99_ms"] = (s.get("post_latency_ms") or {}).get("p99")
    elif scenario == "consistency":
        rate = s.get("confirmed_per_s_during_load")
        out["confirmed_p50_ms"] = (s.get("post_to_confirmed_ms") or {}).get("p50")
        out["confirmed_p99_ms"] = (s.get("post_to_confirmed_ms") or {}).get("p99")
    elif scenario == "burst":
        rate = s.get("completed_per_s_overall")
        out["accepted_per_s"] = s.get("accepted_per_s")
        out["post_p99_from_due_ms"] = (s.get("post_latency_incl_client_queue_ms") or {}).get("p99")
        out["drain_s"] = s.get("drain_s_after_last_post")
    elif scenario == "decoupling":
        fast, slow = s.get("fast") or {}, s.get("slow") or {}
        rate = fast.get("offered_per_s")
        out["post_p99_fast_ms"] = (fast.get("post_latency_ms") or {}).get("p99")
        out["post_p99_slow_smtp_ms"] = (slow.get("post_latency_ms") or {}).get("p99")
    elif scenario == "outage":
        rate = s.get("offered_per_s")
        during = (s.get("by_phase") or {}).get("during") or {}
        out["confirmed_p99_during_ms"] = (during.get("post_to_confirmed_ms") or {}).get("p99")
        out["backlog_drain_s"] = s.get("backlog_drain_s")
    first: dict[str, float | None] = {
        "orders_per_s": rate,
        "service_cpu_ms_per_order": service_cpu(cpu),
    }
    for part in ORDER_PARTS if cpu else ():  # None where the order service is one process
        first[f"{part}_cpu_ms_per_order"] = cpu.get(part)
    first["ratio_to_ceiling"] = round(rate / ceiling, 3) if rate is not None and ceiling else None
    return {**first, **out}


def fix_rates(scale: Scale, results: dict[str, Any]) -> Scale:
    """The open-loop rates one side used, fixed for every later side (same load)."""
    fixed: dict[str, Any] = {}
    s = {name: r.get("summary", {}) for name, r in results.items()}
    if scale.consistency_rate is None and s.get("consistency", {}).get("offered_per_s"):
        fixed["consistency_rate"] = float(s["consistency"]["offered_per_s"])
    fast = s.get("decoupling", {}).get("fast", {})
    if scale.decoupling_rate is None and fast.get("offered_per_s"):
        fixed["decoupling_rate"] = float(fast["offered_per_s"])
    if scale.outage_rate is None and s.get("outage", {}).get("offered_per_s"):
        fixed["outage_rate"] = float(s["outage"]["offered_per_s"])
    return replace(scale, **fixed) if fixed else scale


def summarize_pairs(pairs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario and figure: each side's values over the pairs and their median,
    B/A of the medians, and B/A per pair (each pair's own two runs) with their
    geometric mean and range."""
    out: dict[str, dict[str, Any]] = {}
    scenarios: list[str] = []
    for pair in pairs:
        for side in SIDES:
            for name in pair["headline"].get(side, {}):
                if name not in scenarios:
                    scenarios.append(name)
    for scenario in scenarios:
        metrics: list[str] = []
        for pair in pairs:
            for side in SIDES:
                for key in pair["headline"].get(side, {}).get(scenario, {}):
                    if key not in metrics:
                        metrics.append(key)
        rows: dict[str, Any] = {}
        for key in metrics:
            values: dict[str, list[float]] = {side: [] for side in SIDES}
            per_pair: list[float] = []
            for pair in pairs:
                got = {s: pair["headline"].get(s, {}).get(scenario, {}).get(key) for s in SIDES}
                for side in SIDES:
                    if got[side] is not None and not _nan(got[side]):
                        values[side].append(got[side])
                r = ratio(got["B"], got["A"])
                if r is not None:
                    per_pair.append(r)
            medians = {
                side: (round(statistics.median(v), 3) if v else None) for side, v in values.items()
            }
            rows[key] = {
                "A": values["A"],
                "B": values["B"],
                "A_median": medians["A"],
                "B_median": medians["B"],
                "B/A_of_medians": ratio(medians["B"], medians["A"]),
                "B/A_per_pair": per_pair,
                "B/A_geomean": geomean(per_pair),
                "B/A_range": [min(per_pair), max(per_pair)] if per_pair else None,
            }
        out[scenario] = rows
    return out


def higher_is_better(key: str) -> bool:
    """Rates, ratios to the ceiling and the ceiling itself; everything else (times,
    CPU, work per order) is better lower."""
    return key.endswith("per_s") or key.startswith(("ratio_to_ceiling", "ceiling"))


def _label(key: str) -> str:
    return f"{key.replace('_', ' ')} {'↑' if higher_is_better(key) else '↓'}"


def _value(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    if key.startswith("ratio_to_ceiling"):
        return f"{value:.1%}"
    return _fmt(float(value))


def _ratio_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def print_pair(pair: dict[str, Any], builds: dict[str, dict[str, Any]]) -> None:
    a, b = builds["A"], builds["B"]
    table = Table(
        title=f"pair {pair['pair']} (ran {' then '.join(pair['order'])}):"
        f" A = {a['label']} ({a['commit']}), B = {b['label']} ({b['commit']})"
    )
    for column, justify in (("scenario", "left"), ("figure", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for column in ("A", "B", "B/A"):
        table.add_column(column, justify="right")
    for index, scenario in enumerate(_scenarios(pair)):
        if index:
            table.add_section()
        label = scenario
        for key in _metrics(pair, scenario):
            va = pair["headline"].get("A", {}).get(scenario, {}).get(key)
            vb = pair["headline"].get("B", {}).get(scenario, {}).get(key)
            table.add_row(
                label, _label(key), _value(key, va), _value(key, vb), _ratio_text(ratio(vb, va))
            )
            label = ""
        for side in SIDES:
            error = pair.get("errors", {}).get(side, {}).get(scenario)
            if error:
                table.add_row(label, f"{side}: error", str(error)[:80], "", "")
                label = ""
    sources = pair.get("ceiling_source", {})
    if sources:
        table.caption = "ratio to ceiling: " + "; ".join(
            f"{side} {source or 'no floor run stored'}" for side, source in sources.items()
        )
    console.print(table)


def print_summary(
    summary: dict[str, dict[str, Any]], builds: dict[str, dict[str, Any]], pairs: int
) -> None:
    a, b = builds["A"], builds["B"]
    table = Table(
        title=f"compare, {pairs} pair{'s' if pairs != 1 else ''}:"
        f" A = {a['label']} ({a['commit']}), B = {b['label']} ({b['commit']});"
        " medians over the pairs, B/A per pair"
    )
    table.add_column("scenario")
    table.add_column("figure")
    for column in ("A", "B", "B/A (medians)", "B/A per pair"):
        table.add_column(column, justify="right")
    first = True
    for scenario, rows in summary.items():
        if not first:
            table.add_section()
        first = False
        shown = False
        for key, row in rows.items():
            per_pair = " ".join(f"{r:.2f}" for r in row["B/A_per_pair"]) or "–"
            table.add_row(
                "" if shown else scenario,
                _label(key),
                _value(key, row["A_median"]),
                _value(key, row["B_median"]),
                _ratio_text(row["B/A_of_medians"]),
                per_pair,
            )
            shown = True
    console.print(table)


def _scenarios(pair: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for side in SIDES:
        for name in pair["headline"].get(side, {}):
            if name not in names:
                names.append(name)
    return names


def _metrics(pair: dict[str, Any], scenario: str) -> list[str]:
    keys: list[str] = []
    for side in SIDES:
        for key in pair["headline"].get(side, {}).get(scenario, {}):
            if key not in keys:
                keys.append(key)
    return keys


def write(out: Path, document: dict[str, Any]) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(document.get("started", time.time())))
    path = out / f"compare-{document['ref_commit'][:9]}-{stamp}.json"
    path.write_text(json.dumps(_clean(document), indent=1, default=str) + "\n")
    return path
