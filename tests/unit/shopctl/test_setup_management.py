"""Setup and a broker whose management plugin is off: noticed at once, switched on when
it can be, otherwise one message naming the command. Probes and the plugin command
are fakes; the real ones are in tests/integration/shopctl/test_setup_management.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest
from shopctl.errors import Unreachable
from shopctl.setup.management import (
    ApiState,
    Enabling,
    Endpoints,
    LocalPlugins,
    ManagementApiOff,
    ensure_management_api,
    is_loopback,
)

pytestmark = pytest.mark.timeout(10)

WHERE = Endpoints(api="127.0.0.1:15672", amqp="127.0.0.1:5672")
FIX = "`sudo rabbitmq-plugins enable rabbitmq_management`"
FAST = {"first_backoff": 0.01, "grace": 0.2}


class ScriptedProbes:
    """The API answers each state in turn (the last one for ever); AMQP answers or not."""

    def __init__(self, api: Sequence[ApiState], *, amqp: bool) -> None:
        self._api = list(api)
        self._amqp = amqp
        self.amqp_probes = 0

    async def management_api(self) -> ApiState:
        return self._api.pop(0) if len(self._api) > 1 else self._api[0]

    async def amqp(self) -> bool:
        self.amqp_probes += 1
        return self._amqp


class FakePlugins:
    def __init__(self, result: Enabling | None) -> None:
        self.result = result
        self.calls = 0

    @property
    def fix(self) -> str:
        return FIX

    async def enable(self) -> Enabling | None:
        self.calls += 1
        return self.result


ENABLED = Enabling(command="rabbitmq-plugins enable rabbitmq_management", ok=True, output="")
REFUSED = Enabling(
    command="sudo -n rabbitmq-plugins enable rabbitmq_management",
    ok=False,
    output="sudo: a password is required",
)


async def test_an_api_that_answers_needs_nothing_done() -> None:
    probes = ScriptedProbes([ApiState.UP], amqp=True)
    plugins = FakePlugins(ENABLED)
    assert await ensure_management_api(probes, plugins, where=WHERE, within=5, **FAST) == []
    assert plugins.calls == 0
    assert probes.amqp_probes == 0


async def test_a_plugin_that_is_off_is_enabled_once_and_waited_for() -> None:
    closed_then_up = [ApiState.CLOSED, ApiState.CLOSED, ApiState.STARTING, ApiState.UP]
    plugins = FakePlugins(ENABLED)
    notes = await ensure_management_api(
        ScriptedProbes(closed_then_up, amqp=True), plugins, where=WHERE, within=5, **FAST
    )
    assert plugins.calls == 1
    assert notes == [
        "enabled the RabbitMQ management plugin (rabbitmq-plugins enable rabbitmq_management)"
    ]


async def test_a_plugin_that_cannot_be_enabled_here_fails_soon_naming_the_fix() -> None:
    plugins = FakePlugins(None)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ManagementApiOff) as failed:
        await ensure_management_api(
            ScriptedProbes([ApiState.CLOSED], amqp=True), plugins, where=WHERE, within=60, **FAST
        )
    assert asyncio.get_running_loop().time() - started < 2  # not the 60 s wait
    assert str(failed.value) == (
        "RabbitMQ answers on 127.0.0.1:5672 (AMQP) but nothing listens on 127.0.0.1:15672:"
        " its management plugin is off. Turn it on with"
        " `sudo rabbitmq-plugins enable rabbitmq_management`, then run this again"
    )
    assert plugins.calls == 1


async def test_a_failed_enable_is_reported_with_its_output() -> None:
    with pytest.raises(ManagementApiOff) as failed:
        await ensure_management_api(
            ScriptedProbes([ApiState.CLOSED], amqp=True),
            FakePlugins(REFUSED),
            where=WHERE,
            within=60,
            **FAST,
        )
    assert str(failed.value).endswith(
        "then run this again (`sudo -n rabbitmq-plugins enable rabbitmq_management`"
        " failed here: sudo: a password is required)"
    )


async def test_an_api_a_moment_behind_amqp_is_waited_for_within_the_grace() -> None:
    plugins = FakePlugins(None)
    probes = ScriptedProbes([ApiState.CLOSED, ApiState.CLOSED, ApiState.UP], amqp=True)
    assert await ensure_management_api(probes, plugins, where=WHERE, within=5, **FAST) == []


async def test_a_broker_still_booting_is_waited_for_without_touching_plugins() -> None:
    plugins = FakePlugins(ENABLED)
    booting = [ApiState.CLOSED] * 5 + [ApiState.STARTING, ApiState.UP]
    await ensure_management_api(
        ScriptedProbes(booting, amqp=False), plugins, where=WHERE, within=5, **FAST
    )
    assert plugins.calls == 0


async def test_a_broker_that_never_comes_up_is_reported_as_not_running() -> None:
    plugins = FakePlugins(ENABLED)
    with pytest.raises(Unreachable) as failed:
        await ensure_management_api(
            ScriptedProbes([ApiState.CLOSED], amqp=False), plugins, where=WHERE, within=0.3
        )
    assert "does not answer on 127.0.0.1:5672 (AMQP) nor on 127.0.0.1:15672" in str(failed.value)
    assert "is it running?" in str(failed.value)
    assert plugins.calls == 0


async def test_an_enabled_plugin_whose_api_never_answers_says_so() -> None:
    with pytest.raises(Unreachable) as failed:
        await ensure_management_api(
            ScriptedProbes([ApiState.CLOSED], amqp=True),
            FakePlugins(ENABLED),
            where=WHERE,
            within=0.3,
            first_backoff=0.01,
        )
    assert str(failed.value) == (
        "enabled the management plugin (rabbitmq-plugins enable rabbitmq_management),"
        " but its API on 127.0.0.1:15672 did not answer within 0.3s"
    )


async def test_an_api_that_stays_unavailable_times_out_as_before() -> None:
    with pytest.raises(Unreachable, match=r"not ready within 0\.2s"):
        await ensure_management_api(
            ScriptedProbes([ApiState.STARTING], amqp=True),
            FakePlugins(ENABLED),
            where=WHERE,
            within=0.2,
            first_backoff=0.01,
        )


class Recorder:
    """Stands in for running a command: remembers argv, answers with a fixed result."""

    def __init__(self, code: int = 0, output: str = "") -> None:
        self.argv: list[list[str]] = []
        self._result = (code, output)

    async def __call__(self, argv: list[str], timeout: float) -> tuple[int, str]:
        self.argv.append(argv)
        return self._result


def which_finding(*programs: str) -> Callable[..., str | None]:
    found = {"rabbitmq-plugins": "/usr/sbin/rabbitmq-plugins", "sudo": "/usr/bin/sudo"}

    def which(name: str, path: str | None = None) -> str | None:
        return found[name] if name in programs else None

    return which


async def test_root_runs_the_plugin_command_directly() -> None:
    run = Recorder(output="Enabling plugins on node rabbit@localhost:\nrabbitmq_management\n")
    plugins = LocalPlugins("127.0.0.1", which=which_finding("rabbitmq-plugins"), euid=0, run=run)
    enabling = await plugins.enable()
    assert run.argv == [["/usr/sbin/rabbitmq-plugins", "enable", "rabbitmq_management"]]
    assert enabling == Enabling(
        command="rabbitmq-plugins enable rabbitmq_management",
        ok=True,
        output="rabbitmq_management",
    )
    assert plugins.fix == "`rabbitmq-plugins enable rabbitmq_management`"


async def test_a_user_goes_through_sudo_that_never_prompts() -> None:
    run = Recorder(code=1, output="sudo: a password is required\n")
    plugins = LocalPlugins(
        "localhost", which=which_finding("rabbitmq-plugins", "sudo"), euid=1000, run=run
    )
    enabling = await plugins.enable()
    assert run.argv == [
        ["sudo", "-n", "/usr/sbin/rabbitmq-plugins", "enable", "rabbitmq_management"]
    ]
    assert enabling is not None
    assert not enabling.ok
    assert enabling.output == "sudo: a password is required"
    assert plugins.fix == "`sudo rabbitmq-plugins enable rabbitmq_management`"


async def test_a_user_without_sudo_runs_nothing_and_is_told_to_be_root() -> None:
    run = Recorder()
    plugins = LocalPlugins("127.0.0.1", which=which_finding("rabbitmq-plugins"), euid=1000, run=run)
    assert await plugins.enable() is None
    assert run.argv == []
    assert plugins.fix == "`rabbitmq-plugins enable rabbitmq_management` as root"


async def test_a_broker_on_another_host_is_never_touched_from_here() -> None:
    run = Recorder()
    plugins = LocalPlugins(
        "rabbitmq", which=which_finding("rabbitmq-plugins", "sudo"), euid=0, run=run
    )
    assert await plugins.enable() is None
    assert run.argv == []
    assert plugins.fix == (
        "`rabbitmq-plugins enable rabbitmq_management` on the broker's host (rabbitmq), as root"
    )


async def test_no_plugin_command_on_this_host_runs_nothing() -> None:
    run = Recorder()
    plugins = LocalPlugins("::1", which=which_finding("sudo"), euid=0, run=run)
    assert await plugins.enable() is None
    assert run.argv == []


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.77.5.1", True),  # all of 127.0.0.0/8 is this machine
        ("localhost", True),
        ("LOCALHOST", True),
        ("::1", True),
        ("[::1]", True),
        ("rabbitmq", False),
        ("10.0.0.7", False),
        ("localhost.example.com", False),
    ],
)
def test_only_loopback_addresses_count_as_this_host(host: str, local: bool) -> None:
    assert is_loopback(host) is local
