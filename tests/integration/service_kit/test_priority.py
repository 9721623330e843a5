"""CPU_NICENESS lowers a process below the front door, and on Linux's autogroups
its session's group too, but only a group it has to itself.

Every case runs in a session of its own, never the test runner's: a runner in
PID 1's session (CI's) sits in the kernel's root group, whose
``/proc/self/autogroup`` reads empty."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest

pytestmark = pytest.mark.timeout(60)

GROUP = "def group(): return open('/proc/self/autogroup').read().split()[-1]"

LEADER = dedent(
    f"""
    import os
    from service_kit.priority import lower_priority
    {GROUP}
    lower_priority(5)
    print(os.nice(0), group())
    """
)

# The session's leader forks a child, which shares its session and lowers itself.
SHARED = dedent(
    f"""
    import os
    from service_kit.priority import lower
    {GROUP}
    before = group()
    child = os.fork()
    if child == 0:
        grouped = lower(5)
        print(os.nice(0), group(), grouped, flush=True)
        os._exit(0)
    os.waitpid(child, 0)
    print(before, group())
    """
)


def in_a_new_session(code: str) -> list[list[str]]:
    """The words of each line ``code`` prints, run by a process leading a new session."""
    run = subprocess.run(
        [sys.executable, "-c", code],
        start_new_session=True,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return [line.split() for line in run.stdout.strip().splitlines()]


@pytest.fixture(autouse=True)
def _sessions_get_autogroups() -> None:
    if (
        not Path("/proc/self/autogroup").exists()
        or in_a_new_session("print(open('/proc/self/autogroup').read())") == []
    ):
        pytest.skip("a new session gets no autogroup of its own here")


def test_a_process_leading_its_session_lowers_itself_and_its_autogroup() -> None:
    # The last line: the log line of the change comes first.
    assert in_a_new_session(LEADER)[-1] == [str(min(os.nice(0) + 5, 19)), "5"]


def test_a_process_sharing_a_session_leaves_the_groups_niceness_alone() -> None:
    child, leader = in_a_new_session(SHARED)
    assert child == [str(min(os.nice(0) + 5, 19)), "0", "False"]
    assert leader == ["0", "0"]
