"""What the cluster tests measured, printed as it happens and repeated in the
terminal summary (so CI logs show it even when pytest captures output)."""

from __future__ import annotations

LINES: list[str] = []


def measured(line: str) -> None:
    line = f"[cluster] {line}"
    LINES.append(line)
    print(line)
