"""CPU priority: the processes that drain queues yield to the ones answering requests."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import structlog

log = structlog.get_logger("service_kit.priority")

# Linux's autogroups (on by default in Debian) weigh niceness only within a
# session: a process that leads its own session (honcho and the bench start each
# one so) competes as a group of its own, at the group's niceness.
AUTOGROUP = Path("/proc/self/autogroup")


def lower_priority(niceness: int) -> None:
    """Add ``niceness`` to this process's, and to its autogroup's when it leads
    its own session (never a shared one's: that would lower its neighbours)."""
    if niceness <= 0:
        return
    os.nice(niceness)
    grouped = False
    if os.getsid(0) == os.getpid() and AUTOGROUP.exists():
        with contextlib.suppress(OSError):
            AUTOGROUP.write_text(f"{niceness}\n")
            grouped = True
    log.info("process.priority_lowered", niceness=os.nice(0), autogroup=grouped)
