"""Fixtures of the cluster tier: one three-node cluster for the session
(``rabbit_cluster``), healed after every test (``cluster``). Another tier can use
them the same way: import the two fixtures into its conftest."""

from __future__ import annotations

import pytest

from tests.cluster.measured import LINES
from tests.support.rabbit_cluster import cluster, rabbit_cluster

__all__ = ["cluster", "rabbit_cluster"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if LINES:
        terminalreporter.section("cluster faults: what was measured")
        for line in LINES:
            terminalreporter.write_line(line)
