"""Make sure the RabbitMQ management API is there before setup uses it.

Stock Debian RabbitMQ ships with the management plugin off: AMQP answers, the
API port refuses connections. A booting broker opens its API before its AMQP
listener, so "AMQP answers, the API refuses" means the plugin is off. Then, on
this host and with the right to, we turn it on (``rabbitmq-plugins enable``
is idempotent) and wait for it; otherwise we stop at once and name the command
that fixes it, instead of waiting for a port that will never open.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from shopctl.errors import ShopctlError, Unreachable
from shopctl.setup.waiting import FIRST_BACKOFF, Backoff

log = structlog.get_logger("shopctl.setup")

PLUGIN = "rabbitmq_management"
PLUGINS_COMMAND = "rabbitmq-plugins"
DEFAULT_AMQP_PORT = 5672
# The API and AMQP are started moments apart: a short look again before giving up.
PLUGIN_GRACE = 3.0
PROBE_TIMEOUT = 2.0
ENABLE_TIMEOUT = 120.0  # enabling starts the plugin's applications on the node
LOOPBACK_NAMES = frozenset({"localhost"})
# Debian puts rabbitmq-plugins in /usr/sbin, which a normal user's PATH may lack.
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class ManagementApiOff(ShopctlError):
    """AMQP answers, the management API does not, and we could not switch it on."""


class ApiState(enum.Enum):
    UP = "up"
    CLOSED = "closed"  # nothing accepts connections on its port
    STARTING = "starting"  # accepts, but is not ready (503, a timeout)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """host:port of each, for messages."""

    api: str
    amqp: str


@dataclass(frozen=True, slots=True)
class Enabling:
    """One run of the enable command: what ran, and how it went."""

    command: str
    ok: bool
    output: str


class Probes(Protocol):
    async def management_api(self) -> ApiState: ...
    async def amqp(self) -> bool: ...


class Plugins(Protocol):
    @property
    def fix(self) -> str:
        """How a person turns the plugin on: the command (in backquotes), and where."""
        ...

    async def enable(self) -> Enabling | None:
        """Turn it on from here; None when there is no way to (not this host, no command)."""
        ...


async def ensure_management_api(
    probes: Probes,
    plugins: Plugins,
    *,
    where: Endpoints,
    within: float,
    grace: float = PLUGIN_GRACE,
    first_backoff: float = FIRST_BACKOFF,
) -> list[str]:
    """Return once the API answers (with what was done to get there); raise
    ``ManagementApiOff`` soon when it is off for good, ``Unreachable`` after ``within``."""
    backoff = Backoff(within, first=first_backoff)
    notes: list[str] = []
    attempted = False
    enabling: Enabling | None = None
    off_since: float | None = None
    while True:
        state = await probes.management_api()
        if state is ApiState.UP:
            return notes
        plugin_off = state is ApiState.CLOSED and await probes.amqp()
        if plugin_off:
            off_since = backoff.now() if off_since is None else off_since
            if not attempted:
                attempted = True
                enabling = await plugins.enable()
                if enabling is not None and enabling.ok:
                    log.info("setup.management_plugin_enabled", command=enabling.command)
                    notes.append(f"enabled the RabbitMQ management plugin ({enabling.command})")
            enabled = enabling is not None and enabling.ok
            if not enabled and backoff.now() - off_since >= grace:
                raise ManagementApiOff(_off(where, plugins.fix, enabling))
        else:
            off_since = None
        if backoff.exhausted:
            raise _gave_up(where, within, state, plugin_off, plugins.fix, enabling)
        log.info("setup.waiting", target="RabbitMQ management API", state=state.value)
        await backoff.pause()


def _off(where: Endpoints, fix: str, enabling: Enabling | None) -> str:
    message = (
        f"RabbitMQ answers on {where.amqp} (AMQP) but nothing listens on {where.api}:"
        f" its management plugin is off. Turn it on with {fix}, then run this again"
    )
    if enabling is not None and not enabling.ok:
        message += f" (`{enabling.command}` failed here: {enabling.output or 'no output'})"
    return message


def _gave_up(
    where: Endpoints,
    within: float,
    state: ApiState,
    plugin_off: bool,
    fix: str,
    enabling: Enabling | None,
) -> ShopctlError:
    if enabling is not None and enabling.ok:
        return Unreachable(
            f"enabled the management plugin ({enabling.command}), but its API on"
            f" {where.api} did not answer within {within:g}s"
        )
    if plugin_off:
        return ManagementApiOff(_off(where, fix, enabling))
    if state is ApiState.CLOSED:
        return Unreachable(
            f"RabbitMQ does not answer on {where.amqp} (AMQP) nor on {where.api} (management"
            f" API) within {within:g}s: is it running? (Debian: `sudo systemctl start"
            " rabbitmq-server`)"
        )
    return Unreachable(f"RabbitMQ management API on {where.api} not ready within {within:g}s")


class LiveProbes:
    """The real checks: the API's own answer, and whether anything accepts on AMQP's port."""

    def __init__(
        self, api_state: Callable[[], Awaitable[ApiState]], *, amqp_host: str, amqp_port: int
    ) -> None:
        self._api_state = api_state
        self._host = amqp_host
        self._port = amqp_port

    async def management_api(self) -> ApiState:
        return await self._api_state()

    async def amqp(self) -> bool:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                _, writer = await asyncio.open_connection(self._host, self._port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True


Run = Callable[[list[str], float], Awaitable[tuple[int, str]]]
Which = Callable[..., str | None]


class LocalPlugins:
    """``rabbitmq-plugins`` on this machine, for a broker on this machine.

    Only root may run it (it reads the node's Erlang cookie; anyone else waits long
    for a cryptic error). As root it runs directly; otherwise through ``sudo -n``,
    which fails at once rather than ask for a password; without sudo, not at all.
    """

    def __init__(
        self,
        broker_host: str,
        *,
        which: Which = shutil.which,
        euid: int | None = None,
        run: Run | None = None,
    ) -> None:
        self._host = broker_host
        self._which = which
        self._root = (os.geteuid() if euid is None else euid) == 0
        self._run = run or run_command

    @property
    def local(self) -> bool:
        return is_loopback(self._host)

    @property
    def fix(self) -> str:
        command = f"rabbitmq-plugins enable {PLUGIN}"
        if not self.local:
            return f"`{command}` on the broker's host ({self._host}), as root"
        if self._root:
            return f"`{command}`"
        if self._which("sudo") is None:
            return f"`{command}` as root"
        return f"`sudo {command}`"

    async def enable(self) -> Enabling | None:
        if not self.local:
            return None
        search = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
        program = self._which(PLUGINS_COMMAND, path=search)
        if program is None:
            return None
        argv = [program, "enable", PLUGIN]
        if not self._root:
            if self._which("sudo") is None:
                return None
            argv = ["sudo", "-n", *argv]
        shown = " ".join(PLUGINS_COMMAND if arg == program else arg for arg in argv)
        log.info(
            "setup.enabling_management_plugin",
            command=shown,
            why="AMQP answers but the management API port refuses connections",
        )
        code, output = await self._run(argv, ENABLE_TIMEOUT)
        return Enabling(command=shown, ok=code == 0, output=_last_line(output))


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (all of 127.0.0.0/8, ``::1``)."""
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run_command(argv: list[str], timeout: float) -> tuple[int, str]:
    """Exit code and combined output; 124 (as timeout(1) says) when it took too long."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        return 127, str(exc)
    try:
        async with asyncio.timeout(timeout):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return 124, f"no answer within {timeout:g}s"
    return process.returncode or 0, output.decode(errors="replace")


def _last_line(output: str, limit: int = 200) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""
