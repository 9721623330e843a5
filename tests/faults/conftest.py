"""Fixtures of the fault tier: the real system, started per scenario on a fresh
vhost with fresh databases, and kept around (databases, logs) for the checker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from tests.conftest import NewDatabase
from tests.faults.measured import LINES
from tests.support.accounts import ShopBroker
from tests.support.system import SERVICES, System, running_system

StartSystem = Callable[..., AbstractAsyncContextManager[System]]


@pytest.fixture
async def databases(new_database: NewDatabase) -> dict[str, str]:
    """One fresh database per service (dropped after the test by ``new_database``)."""
    return {name: await new_database(name) for name in SERVICES}


@pytest.fixture
def start_system(
    shop_broker: ShopBroker,
    databases: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> StartSystem:
    """``async with start_system(via=..., extra_env=...) as system``.

    A factory rather than a plain fixture: some scenarios point the services at
    a proxy (``via`` its host:port) instead of the broker, or tune their settings.
    On failure the tail of every service's log is printed (full logs stay in the
    test's tmp_path).
    """

    @asynccontextmanager
    async def start(
        *, via: str | None = None, extra_env: dict[str, str] | None = None
    ) -> AsyncIterator[System]:
        async with running_system(
            broker=shop_broker,
            via=via,
            databases=databases,
            workdir=tmp_path,
            extra_env=extra_env,
        ) as system:
            try:
                yield system
            except BaseException:
                print(f"service logs in {tmp_path}\n{system.logs()}")
                raise

    return start


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Repeat a failing scenario's error in the summary, the last lines of a CI
    log, where it is not buried under the service logs printed before it."""
    report = yield
    if report.failed and call.excinfo is not None:
        LINES.append(f"[faults] FAILED {item.name} ({call.when}): {call.excinfo.exconly()[:3000]}")
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if LINES:
        terminalreporter.section("fault scenarios: what was measured")
        for line in LINES:
            terminalreporter.write_line(line)
