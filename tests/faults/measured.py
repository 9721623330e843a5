"""What the fault scenarios measured, printed as it happens and repeated in the
terminal summary (so CI logs show it even when pytest captures output)."""

from __future__ import annotations

LINES: list[str] = []


def measured(line: str) -> None:
    line = f"[faults] {line}"
    LINES.append(line)
    print(line)
