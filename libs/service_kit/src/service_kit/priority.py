"""CPU priority: the processes that drain queues yield to the ones answering requests."""

from __future__ import annotations

import os
from pathlib import Path

import structlog

log = structlog.get_logger("service_kit.priority")

# Linux's autogroups (on by default in Debian) weigh niceness only within a
# session: a process that leads its own session (honcho and the bench start each
# one so) competes as a group of its own, at the group's niceness.
AUTOGROUP = Path("/proc/self/autogroup")


def lower_priority(niceness: int) -> None:
    """``lower`` this process by ``niceness``, and say so in the log."""
    if niceness > 0:
        grouped = lower(niceness)
        log.info("process.priority_lowered", niceness=os.nice(0), autogroup=grouped)


def lower(niceness: int) -> bool:
    """Add ``niceness`` to this process's, and to its autogroup's when it leads
    its own session (never a shared one's: that would lower its neighbours);
    whether the autogroup's was. Logs nothing: fit for a child before exec."""
    os.nice(niceness)
    if os.getsid(0) != os.getpid() or not AUTOGROUP.exists():
        return False
    try:
        AUTOGROUP.write_text(f"{niceness}\n")
    except OSError:
        return False
    return True
