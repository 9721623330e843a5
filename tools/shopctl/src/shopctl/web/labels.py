"""How times and durations read on the page (the browser shows these strings as they are)."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

SHORT_ID = 8


def clock(at: datetime, tz: tzinfo | None = None) -> str:
    """``14:03:07.042``, in local time unless told otherwise."""
    return at.astimezone(tz).strftime("%H:%M:%S.%f")[:-3]


def duration(elapsed: timedelta | None, *, signed: bool = True) -> str:
    """``+42ms``, ``+1.250s``, ``+2m05s``; ``-`` when there is nothing to measure."""
    if elapsed is None:
        return "-"
    seconds = elapsed.total_seconds()
    sign = ("-" if seconds < 0 else "+") if signed else ("-" if seconds < 0 else "")
    seconds = abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{sign}{seconds:.3f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{sign}{minutes}m{rest:02d}s"


def short_id(identifier: str | None) -> str:
    return (identifier or "-")[:SHORT_ID]
