import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import NewDatabase
from tests.support.accounts import ShopBroker
from tests.support.system import SERVICES, ExternalSystem, System, running_system

# E2E_TARGET=external runs the scenarios against a system already running
# elsewhere (make kind-e2e); tests marked local_processes need this machine's.
EXTERNAL = os.environ.get("E2E_TARGET") == "external"


if EXTERNAL:

    @pytest.fixture
    async def system() -> AsyncIterator[ExternalSystem]:
        external = ExternalSystem.from_environment()
        yield external
        await external.http.aclose()

else:

    @pytest.fixture
    async def system(
        shop_broker: ShopBroker,
        new_database: NewDatabase,
        tmp_path: Path,
        request: pytest.FixtureRequest,
    ) -> AsyncIterator[System]:
        databases = {name: await new_database(name) for name in SERVICES}
        async with running_system(
            broker=shop_broker, databases=databases, workdir=tmp_path
        ) as running:
            yield running
            if getattr(request.node, "rep_call", None) and request.node.rep_call.failed:
                print(running.logs())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
