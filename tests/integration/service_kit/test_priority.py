"""CPU_NICENESS lowers a process below the front door, and on Linux's autogroups
its session's group too, but only a group it has to itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no autogroups here"),
]

LOWER = (
    "import os; from service_kit.priority import lower_priority; lower_priority(5);"
    " print(os.nice(0), open('/proc/self/autogroup').read().split()[-1])"
)


def lowered(*, start_new_session: bool) -> list[str]:
    """The child's niceness and its autogroup's after ``lower_priority(5)``
    (its last line: the log line of the change comes first)."""
    run = subprocess.run(
        [sys.executable, "-c", LOWER],
        start_new_session=start_new_session,
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout.strip().splitlines()[-1].split()


def autogroup_nice() -> str:
    return Path("/proc/self/autogroup").read_text().split()[-1]


def test_a_process_leading_its_session_lowers_itself_and_its_autogroup() -> None:
    out = lowered(start_new_session=True)
    assert out == [str(min(os.nice(0) + 5, 19)), "5"]


def test_a_process_sharing_a_session_leaves_the_groups_niceness_alone() -> None:
    before = autogroup_nice()
    out = lowered(start_new_session=False)
    assert out == [str(min(os.nice(0) + 5, 19)), before]
    assert autogroup_nice() == before
