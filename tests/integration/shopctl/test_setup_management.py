"""The management-API checks against real sockets, without touching the shared broker.

Most tests take a port where nothing listens for the "API", next to the shared
broker's real AMQP listener, and a stand-in ``rabbitmq-plugins`` early on PATH. The
last one boots a RabbitMQ node of its own (own node name, ports, epmd, cookie,
plugins file, all in a temporary directory; see ``tests/support/rabbit_cluster``)
with no plugin enabled, as stock Debian ships it, and runs ``shopctl setup`` against
it: first with a plugins command that fails (setup stops at once and names the fix),
then with the real ``rabbitmq-plugins``, which setup runs to turn the API on."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from shopctl.cli import app
from shopctl.setup import policy
from shopctl.setup.management import (
    ApiState,
    Enabling,
    Endpoints,
    LiveProbes,
    ManagementApiOff,
    ensure_management_api,
    run_command,
)
from shopctl.setup.rabbitmq import ManagementApi
from typer.testing import CliRunner

from tests.conftest import AMQP_URL, RABBITMQ_API
from tests.support.rabbit_cluster import RABBITMQ_BIN, ClusterNode, RabbitCluster
from tests.support.system import free_port

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("restore_logging")]

AMQP = httpx.URL(AMQP_URL.replace("amqp://", "http://"))


def closed_port() -> int:
    """A port nothing listens on (bound and released: refused until someone takes it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CannotEnable:
    fix = "`rabbitmq-plugins enable rabbitmq_management`"

    async def enable(self) -> Enabling | None:
        return None


async def test_the_real_api_is_up() -> None:
    async with ManagementApi(RABBITMQ_API) as api:
        assert await api.state() is ApiState.UP


async def test_a_closed_api_port_beside_a_live_amqp_port_is_a_plugin_that_is_off() -> None:
    port = closed_port()
    async with ManagementApi(f"http://guest:guest@127.0.0.1:{port}") as api:
        assert await api.state() is ApiState.CLOSED
        probes = LiveProbes(api.state, amqp_host=AMQP.host, amqp_port=AMQP.port or 5672)
        assert await probes.amqp()
        # At once, not after the wait (an hour here: the test's timeout would end it first).
        with pytest.raises(ManagementApiOff, match="its management plugin is off"):
            await ensure_management_api(
                probes,
                CannotEnable(),
                where=Endpoints(api=f"127.0.0.1:{port}", amqp=f"{AMQP.host}:{AMQP.port}"),
                within=3600,
            )


async def test_nothing_listening_on_the_amqp_port_is_not_taken_for_amqp() -> None:
    probes = LiveProbes(lambda: _closed(), amqp_host="127.0.0.1", amqp_port=closed_port())
    assert not await probes.amqp()


async def _closed() -> ApiState:
    return ApiState.CLOSED


def fake_plugins_command(directory: Path, *, exit_code: int, says: str) -> Path:
    """A ``rabbitmq-plugins`` that records its arguments and answers like a refusal."""
    calls = directory / "calls"
    script = directory / "rabbitmq-plugins"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "{says}"\nexit {exit_code}\n')
    script.chmod(0o755)
    return calls


def test_setup_stops_at_once_and_names_the_command_when_enabling_fails(tmp_path: Path) -> None:
    calls = fake_plugins_command(tmp_path, exit_code=2, says="Error: not permitted here")
    port = closed_port()
    result = CliRunner().invoke(
        app,
        ["setup", "--no-database", "--wait", "3600"],  # it stops long before, or times out
        env={
            "SETUP_RABBITMQ_API_URL": f"http://guest:guest@127.0.0.1:{port}",
            "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}",
        },
    )
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())  # the console wraps long lines
    assert (
        f"error: RabbitMQ answers on 127.0.0.1:5672 (AMQP) but nothing listens on"
        f" 127.0.0.1:{port}: its management plugin is off. Turn it on with"
    ) in output
    assert "rabbitmq-plugins enable rabbitmq_management" in output
    if os.geteuid() == 0:  # root runs it; anyone else only through sudo -n, if at all
        assert calls.read_text() == "enable rabbitmq_management\n"
        assert "failed here: Error: not permitted here" in output


async def test_run_command_returns_the_exit_code_and_all_output() -> None:
    code, output = await run_command(["sh", "-c", "echo one; echo two >&2; exit 3"], 10)
    assert code == 3
    assert output.split() == ["one", "two"]


async def test_run_command_kills_a_command_that_hangs() -> None:
    started = asyncio.get_running_loop().time()
    code, output = await run_command(["sleep", "30"], 0.5)
    assert (code, output) == (124, "no answer within 0.5s")
    assert asyncio.get_running_loop().time() - started < 5


# -- a RabbitMQ node of our own, started with no plugins ---------------------------------


@pytest.fixture
async def bare_node() -> AsyncIterator[tuple[ClusterNode, int]]:
    """One node of the installed RabbitMQ, apart from the host's, with no plugin enabled;
    its management listener (once enabled) on a port of its own. Stopped by PID."""
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        pytest.skip(f"no RabbitMQ under {RABBITMQ_BIN}")
    node_set = RabbitCluster(size=1)
    try:
        (node,) = node_set.nodes
        assert (node.directory / "enabled_plugins").read_text() == "[].\n"
        api_port = free_port()
        (node.directory / "advanced.config").write_text(
            f'[{{rabbitmq_management, [{{tcp_config, [{{ip, "{node.host}"}},'
            f" {{port, {api_port}}}]}}]}}].\n"
        )
        await node_set.start()
        yield node, api_port
    finally:
        node_set.close()


async def shopctl_setup(node: ClusterNode, api_port: int, path: str) -> tuple[int, str]:
    """``shopctl setup`` (broker only) as a process, in the node's environment, so that
    ``rabbitmq-plugins`` speaks to this node (name, cookie, epmd), never the host's."""
    env = {
        **node.env,
        "PATH": path,
        "SETUP_RABBITMQ_API_URL": f"http://guest:guest@{node.host}:{api_port}/api",
        "SETUP_RABBITMQ_AMQP_PORT": str(node.amqp_port),
        "COLUMNS": "400",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shopctl", "setup", "--no-database", "--wait", "150",
        "--prefix", "bare_",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 200)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode or 0, " ".join(output.decode(errors="replace").split())


@pytest.mark.timeout(420)  # booting a node and starting the plugin, on a busy machine
@pytest.mark.skipif(os.geteuid() != 0, reason="setup enables the plugin itself only as root")
async def test_setup_turns_the_plugin_on_for_a_broker_that_runs_without_it(
    bare_node: tuple[ClusterNode, int], tmp_path: Path
) -> None:
    node, api_port = bare_node
    fake = tmp_path / "fake"
    fake.mkdir()
    calls = fake_plugins_command(fake, exit_code=70, says="Error: plugins are managed elsewhere")
    code, output = await shopctl_setup(node, api_port, f"{fake}{os.pathsep}{os.environ['PATH']}")
    assert code == 1, output
    assert (
        f"error: RabbitMQ answers on {node.host}:{node.amqp_port} (AMQP) but nothing listens"
        f" on {node.host}:{api_port}: its management plugin is off. Turn it on with"
        " `rabbitmq-plugins enable rabbitmq_management`, then run this again (`rabbitmq-plugins"
        " enable rabbitmq_management` failed here: Error: plugins are managed elsewhere)"
    ) in output
    assert calls.read_text() == "enable rabbitmq_management\n"

    # The real command, the node's own scripts first on PATH (not /usr/sbin's wrapper).
    code, output = await shopctl_setup(
        node, api_port, f"{RABBITMQ_BIN}{os.pathsep}{os.environ['PATH']}"
    )
    assert code == 0, output
    assert "enabled the RabbitMQ management plugin (rabbitmq-plugins enable" in output
    assert "rabbitmq_management" in (node.directory / "enabled_plugins").read_text()
    async with ManagementApi(f"http://guest:guest@{node.host}:{api_port}/api") as api:
        assert await api.state() is ApiState.UP
        users = {user["name"] for user in await api.get("/users")}
    assert {user.name for user in policy.broker_users(prefix="bare_")} <= users
