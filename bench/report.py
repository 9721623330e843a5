"""Results out: JSON files, the terminal table (rich) and a Markdown copy of it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.monitor import DISPLAY, SHOP_SERVICES
from bench.ui import console

Row = tuple[str, str, str]


def machine_line(machine: dict[str, Any]) -> str:
    return (
        f"{machine['cpu_model']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"Python {machine['python']}, RabbitMQ {machine['rabbitmq']} (Erlang {machine['erlang']}), "
        f"PostgreSQL {machine['postgresql']}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in machine['load_average_at_start'])}"
    )


def _clean(value: Any) -> Any:
    """JSON has no NaN: write null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def load_latest(out: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((out / "latest.json").read_text()))
    except (OSError, json.JSONDecodeError):
        return {}


def write(out: Path, results: dict[str, Any], meta: dict[str, Any]) -> None:
    latest_path = out / "latest.json"
    latest = load_latest(out)
    latest.setdefault("scenarios", {})
    for name, result in results.items():
        document = {"scenario": name, **meta, **result}
        # Compact: the series are long; the summaries are pretty in latest.json.
        text = json.dumps(_clean(document), separators=(",", ":"), default=str)
        (out / f"{name}.json").write_text(text + "\n")
        latest["scenarios"][name] = {
            "date": meta["machine"]["date"],
            "scale": meta["scale"]["name"],
            "tag": meta.get("tag", ""),
            **({"error": result["error"]} if "error" in result else {}),
            "summary": result.get("summary", {}),
        }
    latest["machine"] = meta["machine"]
    latest["last_run"] = {k: v for k, v in meta.items() if k != "machine"}
    latest_path.write_text(json.dumps(_clean(latest), indent=1, default=str) + "\n")
    rows = summary_rows(results)
    (out / "summary.md").write_text(markdown(rows, meta))


def _ms(stats: dict[str, Any] | None, *keys: str) -> str:
    if not stats or not stats.get("count"):
        return "–"
    return " / ".join(_fmt(stats.get(k)) for k in keys) + " ms"


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def summary_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for name, result in results.items():
        if "error" in result and "summary" not in result:
            rows.append((name, "error", str(result["error"])[:120]))
            continue
        s = result.get("summary", {})
        if "error" in result:
            rows.append((name, "error", str(result["error"])[:120]))
        try:
            rows.extend(_ROWS.get(name, _generic)(s))
        except (KeyError, TypeError) as exc:  # a partial summary: show what there is
            rows.append((name, "incomplete summary", repr(exc)[:120]))
        if name != "memory" and s.get("max_rss_mib"):
            rows.append((name, "peak RSS per process during it (MiB)", _rss(s["max_rss_mib"])))
        if s.get("disturbed"):
            rows.append((name, "⚠ disturbed", s["disturbed"]))
    return rows


def _generic(s: dict[str, Any]) -> list[Row]:
    return [("?", k, _fmt(v)) for k, v in s.items() if not isinstance(v, dict | list)]


def _floor(s: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    raw = s.get("raw", {})
    for v in raw.get("postgres", {}).values():
        rows.append(
            ("floor", f"PostgreSQL INSERT+COMMIT, {v['connections']} conn", f"{_fmt(v['rate'])}/s")
        )
    for qtype, q in raw.get("rabbitmq", {}).items():
        for key, v in q.items():
            if key.startswith("publish"):
                rows.append(
                    (
                        "floor",
                        f"RabbitMQ {qtype} publish+confirm, {v['in_flight']} in flight",
                        f"{_fmt(v['rate'])}/s",
                    )
                )
        rows.append(
            ("floor", f"RabbitMQ {qtype} consume+ack", f"{_fmt(q['consume_ack']['rate'])}/s")
        )
    for name, v in raw.get("consumer_tx", {}).items():
        rows.append(
            (
                "floor",
                f"consumer tx (inbox+outbox+commit) via {name}",
                f"{_fmt(v['rate'])}/s, client CPU {v['client_cpu_ms_per_tx']:.2f} ms/tx",
            )
        )
    work = s.get("per_order")
    if work:
        per = ", ".join(f"{k} {v['commits_per_order']:.1f}" for k, v in work["by_service"].items())
        rows.append(
            ("floor", "commits per order (net of idle)", f"{work['commits_per_order']:.1f} ({per})")
        )
        rows.append(("floor", "rows written per order", f"{work['rows_written_per_order']:.1f}"))
        b = work["broker"]
        rows.append(
            (
                "floor",
                "broker per order: publishes / deliveries / acks",
                f"{b['publishes_per_order']:.1f} / {b['deliveries_per_order']:.1f}"
                f" / {b['acks_per_order']:.1f}",
            )
        )
        rows.append(
            (
                "floor",
                "idle commits (relay polls, housekeeping)",
                f"{work['idle_commits_per_s']:.1f}/s",
            )
        )
    if s.get("per_order_error"):
        rows.append(("floor", "per-order census", f"error: {s['per_order_error']}"))
    c = s.get("ceiling")
    if c:
        pr = c["per_resource"]
        rows.append(
            (
                "floor",
                "ceiling per resource (pg / publish / consume)",
                f"{_fmt(pr['postgres'])} / {_fmt(pr['publish'])} / {_fmt(pr['consume'])} orders/s",
            )
        )
        rows.append(
            ("floor", "ceiling, resources sharing the cores", f"{_fmt(c['combined'])} orders/s")
        )
    return rows


def _throughput(s: dict[str, Any]) -> list[Row]:
    rows: list[Row] = [
        (
            "throughput",
            f"orders/s, POST → final + 2 emails ({s['clients']} clients)",
            f"{_fmt(s['orders_per_s'])}/s",
        ),
    ]
    if "ratio_to_ceiling_combined" in s:
        rows.append(
            (
                "throughput",
                "ratio to ceiling (combined / best single resource)",
                f"{s['ratio_to_ceiling_combined']:.0%}"
                f" / {s.get('ratio_to_ceiling_min_single_resource', 0):.0%}"
                + (
                    f" (of the {s['ceiling_source']})"
                    if s.get("ceiling_source", "this run") != "this run"
                    else ""
                ),
            )
        )
    rows += [
        ("throughput", "end to end p50 / p95 / p99", _ms(s["end_to_end_ms"], "p50", "p95", "p99")),
        ("throughput", "POST p50 / p99", _ms(s["post_latency_ms"], "p50", "p99")),
        ("throughput", "errors / timeouts", f"{s['errors']} / {s['timeouts']}"),
        ("throughput", "CPU in use (cores of 2)", _cpu(s.get("cpu_cores", {}))),
    ]
    rows += _cpu_per_order("throughput", s)
    profile = s.get("profile")
    if profile:
        for service, p in profile.items():
            if isinstance(p, dict) and p.get("by_library"):
                top = ", ".join(f"{k} {v:.0%}" for k, v in list(p["by_library"].items())[:4])
                rows.append(("throughput", f"profile {service}", top))
    return rows


def _cpu_per_order(scenario: str, s: dict[str, Any]) -> list[Row]:
    per_order = s.get("cpu_ms_per_order")
    if not per_order:
        return []
    shop = sum(v for k, v in per_order.items() if k in SHOP_SERVICES)
    detail = ", ".join(f"{k} {per_order[k]:.0f}" for k in DISPLAY if k in per_order)
    return [(scenario, "CPU ms per order (4 services total)", f"{shop:.0f} ({detail})")]


def _rss(peaks: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()) or "–"


def _memory(s: dict[str, Any]) -> list[Row]:
    peaks = s.get("max_rss_mib") or {}
    return [
        (
            "memory",
            "max RSS per service process through the run (MiB)",
            f"{_rss(peaks)}; total {_fmt(s.get('services_total_mib'))}",
        )
    ]


def _cpu(cpu: dict[str, float]) -> str:
    if not cpu:
        return "–"
    keys = ("machine", *DISPLAY, "other")
    return ", ".join(f"{k} {cpu[k]:.2f}" for k in keys if k in cpu)


def _consistency(s: dict[str, Any]) -> list[Row]:
    return [
        (
            "consistency",
            "offered / achieved POST rate / confirmed rate",
            f"{_fmt(s['offered_per_s'])} / {_fmt(s['achieved_post_per_s'])}"
            f" / {_fmt(s['confirmed_per_s_during_load'])} per s"
            + (f" (offered: {s['rate_basis']})" if s.get("rate_basis") else ""),
        ),
        (
            "consistency",
            "POST → CONFIRMED p50 / p95 / p99",
            _ms(s["post_to_confirmed_ms"], "p50", "p95", "p99"),
        ),
        (
            "consistency",
            "POST → both emails p50 / p99",
            _ms(s["post_to_all_emails_ms"], "p50", "p99"),
        ),
        ("consistency", "POST p50 / p99", _ms(s["post_latency_ms"], "p50", "p99")),
        ("consistency", "errors / late", f"{s['errors']} / {s['late_or_missing']}"),
    ]


def _decoupling(s: dict[str, Any]) -> list[Row]:
    f, w = s["fast"], s["slow"]
    return [
        (
            "decoupling",
            f"POST p50 / p99, fast SMTP ({_fmt(f['offered_per_s'])}/s)",
            _ms(f["post_latency_ms"], "p50", "p99"),
        ),
        (
            "decoupling",
            f"POST p50 / p99, SMTP {w['smtp_delay_s']:g} s/message",
            _ms(w["post_latency_ms"], "p50", "p99"),
        ),
        (
            "decoupling",
            "POST → CONFIRMED p50 / p99, fast → slow",
            f"{_ms(f['post_to_confirmed_ms'], 'p50', 'p99')}"
            f" → {_ms(w['post_to_confirmed_ms'], 'p50', 'p99')}",
        ),
        (
            "decoupling",
            "email.events peak, fast / slow",
            f"{f['email_queue_peak']} / {w['email_queue_peak']}",
        ),
        ("decoupling", "errors fast / slow", f"{f['errors']} / {w['errors']}"),
    ]


def _burst(s: dict[str, Any]) -> list[Row]:
    peaks = s.get("peak_ready", {})
    peak = ", ".join(f"{q.split('.')[0]} {v:,}" for q, v in peaks.items() if not q.endswith(".dlq"))
    return [
        (
            "burst",
            f"{s['offered']:,} orders offered at {_fmt(s['offered_per_s'])}/s",
            f"accepted {s['accepted']:,}, errors {s['errors']}, lost {s['lost']}, "
            f"dead-lettered {s['dead_lettered']}",
        ),
        (
            "burst",
            "emails sent / expected / duplicates",
            f"{s['emails']:,} / {s['emails_expected']:,} / {s['duplicate_emails']}",
        ),
        (
            "burst",
            "duplicate effects: orders / stock units / payments",
            _extra(s.get("effects")),
        ),
        ("burst", "POST p50 / p99 (from send)", _ms(s["post_latency_ms"], "p50", "p99")),
        (
            "burst",
            "POST p50 / p99 (from due time)",
            _ms(s["post_latency_incl_client_queue_ms"], "p50", "p99"),
        ),
        (
            "burst",
            "accepted rate / completed rate",
            f"{_fmt(s['accepted_per_s'])} / {_fmt(s['completed_per_s_overall'])} per s",
        ),
        ("burst", "peak ready messages", peak or "–"),
        ("burst", "drain after the last POST", f"{_fmt(s['drain_s_after_last_post'])} s"),
        *_cpu_per_order("burst", s),
    ]


def _extra(effects: dict[str, Any] | None) -> str:
    """Effects beyond one per accepted order (one per confirmed order for stock and
    payments), counted in the services' databases; a dash where not counted."""
    if not effects:
        return "–"
    extra = " / ".join(
        _fmt(effects.get(f"extra_{k}")) for k in ("orders", "stock_units", "payments")
    )
    return f"{extra} (of {_fmt(effects.get('confirmed_orders'))} confirmed)"


def _outage(s: dict[str, Any]) -> list[Row]:
    rows: list[Row] = [
        (
            "outage",
            f"email down {s['email_down_s']:g} s at {_fmt(s['offered_per_s'])} orders/s",
            f"errors {s['errors']}, emails {s['emails']:,}/{s['emails_expected']:,},"
            f" duplicates {s['duplicate_emails']}",
        )
    ]
    for phase, v in s["by_phase"].items():
        rows.append(
            (
                "outage",
                f"{phase}: POST p99 · CONFIRMED p50/p99 · confirmed/s",
                f"{_ms(v['post_latency_ms'], 'p99')} · "
                f"{_ms(v['post_to_confirmed_ms'], 'p50', 'p99')} · {_fmt(v['confirmed_per_s'])}",
            )
        )
    rows.append(
        (
            "outage",
            "email.events peak / drained after restart",
            f"{s['email_queue_peak']:,} / {_fmt(s['backlog_drain_s'])} s",
        )
    )
    return rows


_ROWS = {
    "floor": _floor,
    "throughput": _throughput,
    "consistency": _consistency,
    "decoupling": _decoupling,
    "burst": _burst,
    "outage": _outage,
    "memory": _memory,
}


def print_tables(results: dict[str, Any], meta: dict[str, Any]) -> None:
    table = Table(
        title=f"shop benchmark ({meta['scale']['name']}, {meta.get('duration_s', '?')} s)"
    )
    table.add_column("scenario", style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    previous = None
    for scenario, metric, value in summary_rows(results):
        if previous is not None and scenario != previous:
            table.add_section()
        table.add_row(scenario if scenario != previous else "", metric, value)
        previous = scenario
    console.print(table)
    console.print(machine_line(meta["machine"]))


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    lines = [
        f"Scale `{meta['scale']['name']}`, {meta['machine']['date']},"
        f" {meta.get('duration_s', '?')} s"
        + (f", tag `{meta['tag']}`" if meta.get("tag") else "")
        + (f", service env `{meta['service_env']}`" if meta.get("service_env") else ""),
        "",
        f"Machine: {machine_line(meta['machine'])}.",
        "",
        "| scenario | metric | value |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {s} | {m} | {v} |" for s, m, v in rows]
    return "\n".join(lines) + "\n"
