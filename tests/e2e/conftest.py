from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import NewDatabase
from tests.support.system import SERVICES, System, running_system


@pytest.fixture
async def system(
    vhost_url: str, new_database: NewDatabase, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[System]:
    databases = {name: await new_database(name) for name in SERVICES}
    async with running_system(amqp_url=vhost_url, databases=databases, workdir=tmp_path) as system:
        yield system
        if getattr(request.node, "rep_call", None) and request.node.rep_call.failed:
            print(system.logs())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
