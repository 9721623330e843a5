import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import NewDatabase
from tests.support.system import SERVICES, ExternalSystem, System, running_system

# E2E_TARGET=external runs the scenarios against a system already running
# elsewhere (make kind-e2e); tests marked local_processes need this machine's.
EXTERNAL = os.environ.get("E2E_TARGET") == "external"


@pytest.fixture
async def system(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[System]:
    if EXTERNAL:
        external = ExternalSystem.from_environment()
        yield external  # type: ignore[misc]
        await external.http.aclose()
        return
    vhost_url: str = request.getfixturevalue("vhost_url")
    new_database: NewDatabase = request.getfixturevalue("new_database")
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
