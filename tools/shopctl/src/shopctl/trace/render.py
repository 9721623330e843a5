"""The trace on screen: a header with the order, then the timeline across services."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from shopctl.services import colour_of, styled
from shopctl.trace.sources import Story
from shopctl.trace.timeline import Entry, cause_service

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
STATUS_STYLES = {"CONFIRMED": "green", "CANCELLED": "red", "PENDING": "yellow"}


def story_view(story: Story, timeline: Sequence[Entry]) -> RenderableType:
    return Group(_header(story), _timeline(timeline), *_gaps(story.gaps))


def _header(story: Story) -> Panel:
    order = story.order
    status = str(order.get("status", "?"))
    lines = [f"[bold]status[/]  [{STATUS_STYLES.get(status, 'white')}]{escape(status)}[/]"]
    if order.get("reason"):
        lines.append(f"[bold]reason[/]  {escape(str(order['reason']))}")
    if order.get("total") is not None:
        lines.append(f"[bold]total[/]   {order['total']} {order.get('currency', '')}".rstrip())
    items = order.get("items")
    if isinstance(items, list):
        lines.append(f"[bold]items[/]   {len(items)} line(s)")
    return Panel("\n".join(lines), title=f"order {escape(story.order_id)}", expand=False)


def _timeline(entries: Sequence[Entry]) -> Table:
    table = Table(title="timeline", title_justify="left")
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("+", justify="right", no_wrap=True)
    table.add_column("service", no_wrap=True)
    table.add_column("what")
    table.add_column("detail", overflow="fold")
    start = next((e.at for e in entries if e.at is not None), None)
    for entry in entries:
        when = entry.at.astimezone(UTC).strftime(TIME_FORMAT)[:-3] if entry.at else "-"
        since = f"{(entry.at - start).total_seconds():.3f}s" if entry.at and start else ""
        what = escape(entry.what)
        if entry.problem:
            what = f"[red]{what}[/]"
        table.add_row(when, since, styled(entry.service), what, _detail(entry))
    return table


def _gaps(gaps: Sequence[str]) -> list[RenderableType]:
    return [f"[yellow]not shown: {escape(gap)}[/]" for gap in gaps]


def _detail(entry: Entry) -> str:
    """The detail, with the causing event type in its producer's colour."""
    detail = escape(entry.detail)
    service = cause_service(entry)
    if service is None or entry.cause is None:
        return detail
    cause = escape(entry.cause)
    return detail.replace(cause, f"[{colour_of(service)}]{cause}[/]", 1)
