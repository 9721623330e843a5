"""PNG charts of the results (matplotlib, headless)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

QUEUE_COLORS = {
    "order.events": "tab:blue",
    "inventory.events": "tab:orange",
    "payment.events": "tab:green",
    "email.events": "tab:red",
}
CPU_GROUPS = (
    "order", "inventory", "payment", "email", "postgres", "rabbitmq",
    "bench client", "smtp sink", "other",
)  # fmt: skip


def _footer(fig: Figure, meta: dict[str, Any]) -> None:
    m = meta["machine"]
    fig.text(
        0.01,
        0.005,
        f"{m['cpu_model']} · {m['cores']} cores · {m['ram_gib']} GiB · Python {m['python']} · "
        f"RabbitMQ {m['rabbitmq']} · PostgreSQL {m['postgresql']} · "
        f"{meta['scale']['name']} scale · {m['date']}",
        fontsize=7,
        color="grey",
    )


def _save(fig: Figure, out: Path, name: str, meta: dict[str, Any]) -> Path:
    _footer(fig, meta)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    path = out / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _finish(
    ax: Axes,
    title: str | None = None,
    *,
    x: str | None = None,
    y: str | None = None,
    legend: int | None = 8,
    columns: int = 1,
    where: str = "best",
    grid: str = "both",
    title_size: float | None = None,
) -> None:
    """What every panel ends with: title, axis labels, legend, a light grid."""
    if title is not None:
        ax.set_title(title, **({"fontsize": title_size} if title_size else {}))
    if x is not None:
        ax.set_xlabel(x)
    if y is not None:
        ax.set_ylabel(y)
    if legend is not None:
        ax.legend(fontsize=legend, ncol=columns, loc=where)
    # Minor lines only show where there are minor ticks (the log axes).
    ax.grid(alpha=0.3, axis=grid, which="both")


def _depths(
    ax: Axes,
    samples: list[dict[str, Any]],
    *,
    mgmt: bool = True,
    only: tuple[str, ...] | None = None,
) -> None:
    t = [s["t"] for s in samples]
    for queue, color in QUEUE_COLORS.items():
        if only and queue not in only:
            continue
        ax.plot(
            t,
            [s["ready"].get(queue, math.nan) for s in samples],
            color=color,
            label=f"{queue} ready",
        )
        if mgmt:
            ax.plot(
                t,
                [s.get("mgmt", {}).get(queue, {}).get("messages", math.nan) for s in samples],
                color=color,
                linestyle=":",
                linewidth=1,
                label=f"{queue} (mgmt API)",
            )
    _finish(ax, x="seconds", y="messages", legend=7, columns=2)


def _cpu(ax: Axes, samples: list[dict[str, Any]]) -> None:
    t = [s["t"] for s in samples]
    stacks = [[s["cpu"].get(g, 0.0) for s in samples] for g in CPU_GROUPS]
    colors = [*plt.get_cmap("tab10").colors[: len(CPU_GROUPS) - 1], "lightgrey"]
    ax.stackplot(t, stacks, labels=CPU_GROUPS, colors=colors, alpha=0.85)
    ax.plot(
        t,
        [s["cpu"].get("machine", 0.0) for s in samples],
        color="black",
        linewidth=1,
        label="whole machine",
    )
    _finish(
        ax,
        "CPU by process group (postgres: backends of the shop's databases; "
        "other: the rest of the machine)",
        x="seconds",
        y="CPU (cores)",
        legend=6,
        columns=3,
        where="upper left",
        title_size=9,
    )


def floor_chart(
    out: Path, result: dict[str, Any], meta: dict[str, Any], results: dict[str, Any]
) -> Path | None:
    s = result.get("summary", {})
    raw = s.get("raw")
    if not raw:
        return None
    labels, values = [], []
    for v in raw["postgres"].values():
        labels.append(f"pg INSERT+COMMIT ×{v['connections']}")
        values.append(v["rate"])
    for qtype, q in raw["rabbitmq"].items():
        for key, v in q.items():
            if key.startswith("publish"):
                labels.append(f"{qtype} publish+confirm ×{v['in_flight']}")
                values.append(v["rate"])
        labels.append(f"{qtype} consume+ack")
        values.append(q["consume_ack"]["rate"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    axes[0].barh(labels, values, color="tab:gray")
    for i, v in enumerate(values):
        axes[0].text(v, i, f" {v:,.0f}", va="center", fontsize=8)
    axes[0].set_xlabel("operations/s")
    axes[0].set_title("floor: bare PostgreSQL and RabbitMQ from one Python client")
    axes[0].invert_yaxis()
    c = s.get("ceiling")
    if c:
        names = ["pg bound", "publish bound", "consume bound", "combined ceiling"]
        vals = [
            c["per_resource"]["postgres"],
            c["per_resource"]["publish"],
            c["per_resource"]["consume"],
            c["combined"],
        ]
        colors = ["tab:gray"] * 3 + ["tab:blue"]
        measured = results.get("throughput", {}).get("summary", {}).get("orders_per_s")
        if measured:
            names.append("measured throughput")
            vals.append(measured)
            colors.append("tab:green")
        vals = [v or 0 for v in vals]
        axes[1].barh(names, vals, color=colors)
        for i, v in enumerate(vals):
            axes[1].text(v, i, f" {v:,.0f}", va="center", fontsize=8)
        axes[1].invert_yaxis()
        axes[1].set_xlabel("orders/s")
        w = s["per_order"]
        axes[1].set_title(
            f"per order: {w['commits_per_order']:.1f} commits, "
            f"{w['broker']['publishes_per_order']:.1f} publishes, "
            f"{w['broker']['deliveries_per_order']:.1f} deliveries",
            fontsize=9,
        )
    else:
        axes[1].axis("off")
    return _save(fig, out, "floor", meta)


def throughput_chart(
    out: Path, result: dict[str, Any], meta: dict[str, Any], _: dict[str, Any]
) -> Path | None:
    s, series = result.get("summary"), result.get("series")
    if not s or not series:
        return None
    fig, axes = plt.subplots(3, 1, figsize=(11, 10))
    ax = axes[0]
    ax.plot(series["posted_per_s"], label="POST /orders per s", color="tab:gray")
    ax.plot(series["completed_per_s"], label="orders final + both emails per s", color="tab:green")
    ax.axhline(
        s["orders_per_s"],
        color="tab:green",
        linestyle="--",
        linewidth=1,
        label=f"sustained {s['orders_per_s']:.0f}/s",
    )
    ax.axvspan(0, s["warmup_s"], color="grey", alpha=0.15, label="warm-up (not counted)")
    _finish(ax, f"throughput: {s['clients']} closed-loop clients", x="seconds", y="per second")
    ax = axes[1]
    windows = series["end_to_end_ms_by_5s"]
    for p, color in (("p50", "tab:blue"), ("p95", "tab:orange"), ("p99", "tab:red")):
        ax.plot(
            [w["t"] for w in windows],
            [w[p] for w in windows],
            marker="o",
            color=color,
            label=f"end to end {p}",
        )
    _finish(ax, "latency POST → both emails accepted by SMTP", x="seconds (5 s windows)", y="ms")
    _cpu(axes[2], series["samples"])
    return _save(fig, out, "throughput", meta)


def consistency_chart(
    out: Path, result: dict[str, Any], meta: dict[str, Any], _: dict[str, Any]
) -> Path | None:
    s, series = result.get("summary"), result.get("series")
    if not s or not series:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    values = [v * 1000 for v in series["post_to_confirmed_s"] if v == v]
    if values:
        n = len(values)
        axes[0].plot(values, [i / n * 100 for i in range(1, n + 1)], color="tab:blue")
        for p, color in (("p50", "tab:green"), ("p95", "tab:orange"), ("p99", "tab:red")):
            v = s["post_to_confirmed_ms"].get(p)
            if v:
                axes[0].axvline(
                    v, color=color, linestyle="--", linewidth=1, label=f"{p} {v:,.0f} ms"
                )
        axes[0].set_xscale("log")
    _finish(
        axes[0],
        f"time to consistency at {s['offered_per_s']:g} orders/s offered",
        x="POST → CONFIRMED (ms, log)",
        y="% of orders",
    )
    axes[1].plot(series["posted_per_s"], color="tab:gray", label="POST per s")
    axes[1].plot(series["confirmed_per_s"], color="tab:green", label="CONFIRMED per s")
    _finish(axes[1], "offered vs confirmed", x="seconds", y="per second")
    return _save(fig, out, "consistency", meta)


def decoupling_chart(
    out: Path, result: dict[str, Any], meta: dict[str, Any], _: dict[str, Any]
) -> Path | None:
    s, series = result.get("summary"), result.get("series")
    if not s or not series:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    groups = ["POST p50", "POST p99", "CONFIRMED p50", "CONFIRMED p99"]
    width = 0.38
    for i, (key, label, color) in enumerate(
        (
            ("fast", "fast SMTP", "tab:blue"),
            ("slow", f"SMTP {s['slow']['smtp_delay_s']:g} s/message", "tab:red"),
        )
    ):
        phase = s[key]
        vals = [
            phase["post_latency_ms"].get("p50", 0),
            phase["post_latency_ms"].get("p99", 0),
            phase["post_to_confirmed_ms"].get("p50", 0),
            phase["post_to_confirmed_ms"].get("p99", 0),
        ]
        xs = [x + i * width for x in range(len(groups))]
        axes[0].bar(xs, vals, width, label=label, color=color)
        for x, v in zip(xs, vals, strict=True):
            axes[0].text(x, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=7)
    axes[0].set_xticks([x + width / 2 for x in range(len(groups))], groups)
    _finish(axes[0], f"decoupling at {s['fast']['offered_per_s']:g} orders/s", y="ms", grid="y")
    for key, color in (("fast", "tab:blue"), ("slow", "tab:red")):
        samples = series[key]
        axes[1].plot(
            [x["t"] for x in samples],
            [x["ready"].get("email.events", 0) for x in samples],
            color=color,
            label=f"email.events, {key} SMTP",
        )
    _finish(axes[1], "email backlog", x="seconds", y="ready messages")
    return _save(fig, out, "decoupling", meta)


def burst_chart(
    out: Path, result: dict[str, Any], meta: dict[str, Any], _: dict[str, Any]
) -> Path | None:
    s, series = result.get("summary"), result.get("series")
    if not s or not series:
        return None
    fig, axes = plt.subplots(3, 1, figsize=(11, 10))
    _depths(axes[0], series["samples"])
    axes[0].axvline(series["posts_done_t"], color="black", linestyle="--", linewidth=1)
    axes[0].set_title(
        f"burst: {s['offered']:,} orders at {s['offered_per_s']:g}/s — queue depths every 0.5 s "
        f"(solid: AMQP, exact; dotted: management API)"
    )
    axes[1].plot(series["accepted_per_s"], color="tab:gray", label="POST accepted per s")
    axes[1].plot(series["completed_per_s"], color="tab:green", label="final + both emails per s")
    _finish(
        axes[1],
        f"drained {s['drain_s_after_last_post']} s after the last POST; "
        f"lost {s['lost']}, errors {s['errors']}",
        x="seconds",
        y="per second",
    )
    _cpu(axes[2], series["samples"])
    return _save(fig, out, "burst", meta)


def outage_chart(
    out: Path, result: dict[str, Any], meta: dict[str, Any], _: dict[str, Any]
) -> Path | None:
    s, series = result.get("summary"), result.get("series")
    if not s or not series:
        return None
    marks = series["marks"]
    fig, axes = plt.subplots(3, 1, figsize=(11, 10), sharex=True)
    for ax in axes:
        ax.axvspan(marks["down"], marks["up"], color="tab:red", alpha=0.12)
    axes[0].plot(series["posted_per_s"], color="tab:gray", label="POST per s")
    axes[0].plot(series["confirmed_per_s"], color="tab:green", label="CONFIRMED per s")
    axes[0].plot(series["emails_per_s"], color="tab:red", label="emails per s")
    _finish(
        axes[0],
        f"outage: email service down {s['email_down_s']:g} s (shaded) "
        f"at {s['offered_per_s']:g} orders/s",
        y="per second",
    )
    _depths(axes[1], series["samples"], mgmt=False)
    axes[1].set_title(
        f"queue depths; email.events drained {s['backlog_drain_s']} s after the restart"
    )
    _cpu(axes[2], series["samples"])
    return _save(fig, out, "outage", meta)


CHARTS: dict[str, Callable[[Path, dict[str, Any], dict[str, Any], dict[str, Any]], Path | None]] = {
    "floor": floor_chart,
    "throughput": throughput_chart,
    "consistency": consistency_chart,
    "decoupling": decoupling_chart,
    "burst": burst_chart,
    "outage": outage_chart,
}


def draw_all(out: Path, results: dict[str, Any], meta: dict[str, Any]) -> list[Path]:
    paths = []
    for name, result in results.items():
        chart = CHARTS.get(name)
        if chart is None or "error" in result:
            continue
        try:
            path = chart(out, result, meta, results)
        except Exception as exc:
            from bench.ui import console

            console.print(f"[yellow]chart {name} failed: {exc!r}")
            continue
        if path is not None:
            paths.append(path)
    return paths
