"""How dead letters look on screen (rich renderables, no I/O)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Group as Stack
from rich.console import RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from shopctl.dlq.letters import DeadLetter, QueueSummary
from shopctl.services import styled

EXAMPLE_WIDTH = 60


def summary_table(summaries: Sequence[QueueSummary]) -> Table:
    table = Table(title="Dead-letter queues", title_justify="left", expand=False)
    # Queue names stay whole (people copy them into the next command); examples give way.
    table.add_column(
        "queue", no_wrap=True, min_width=max((len(x.queue) for x in summaries), default=5)
    )
    table.add_column("depth", justify="right")
    table.add_column("count", justify="right")
    table.add_column("reason", overflow="fold")
    table.add_column("exception", overflow="fold")
    table.add_column("event types", overflow="fold")
    table.add_column("example", overflow="ellipsis", max_width=EXAMPLE_WIDTH)
    for summary in summaries:
        service = summary.queue.split(".", 1)[0]
        queue = f"{styled(service)}{escape(summary.queue[len(service) :])}"
        if summary.depth is None:
            table.add_row(queue, "[dim]missing[/]", "", "", "", "", "")
            continue
        depth = f"[bold red]{summary.depth}[/]" if summary.depth else "0"
        if not summary.groups:
            table.add_row(queue, depth, "", "", "", "", "")
            continue
        for i, group in enumerate(summary.groups):
            table.add_row(
                queue if i == 0 else "",
                depth if i == 0 else "",
                str(group.count),
                escape(group.reason),
                escape(group.exception),
                escape(", ".join(group.event_types)),
                escape(group.example),
            )
        if summary.depth is not None and summary.read < summary.depth:
            table.add_row("", "", f"[dim]grouped the first {summary.read}[/]", *[""] * 4)
    return table


def letter_view(letter: DeadLetter) -> RenderableType:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows: list[tuple[str, str]] = [
        ("queue", f"{letter.queue} (position {letter.position})"),
        ("message id", letter.message_id or "-"),
        ("type", letter.event_type or "-"),
        ("order id", letter.order_id or "-"),
        ("reason", letter.reason),
        ("exception", _exception(letter)),
        ("failed at", letter.failed_at.isoformat() if letter.failed_at else "-"),
        ("attempts", str(letter.attempts) if letter.attempts is not None else "-"),
        ("retries", str(letter.retry_count)),
        ("replays", str(letter.replay_count)),
        ("content type", letter.content_type or "-"),
    ]
    for name, value in rows:
        facts.add_row(name, escape(value))

    headers = Table(title="headers", title_justify="left", show_header=False, box=None)
    headers.add_column(style="cyan")
    headers.add_column(overflow="fold")
    for key in sorted(letter.headers):
        value = letter.headers[key]
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        headers.add_row(escape(key), escape(shown))

    return Stack(
        Panel(facts, title=f"dead letter {letter.position} of {letter.queue}", expand=False),
        headers,
        Text("body", style="bold"),
        body_view(letter),
    )


def body_view(letter: DeadLetter) -> RenderableType:
    body = letter.body_json()
    if body is None:
        return Text(letter.body.decode("utf-8", errors="replace"))
    return Syntax(json.dumps(body, indent=2, ensure_ascii=False), "json", word_wrap=True)


def _exception(letter: DeadLetter) -> str:
    if not letter.exception_message:
        return letter.exception
    return f"{letter.exception}: {letter.exception_message}"
