"""A real three-node RabbitMQ cluster on this machine, and the faults to throw at it.

Three nodes of the installed RabbitMQ (``rabbitmq-server`` from the Debian package)
run as children of the test process, fully apart from the host's own node
(``rabbit@localhost``: AMQP 5672, distribution 25672, epmd 4369), which is never
touched:

- each node has a loopback address of its own, ``127.A.B.1`` .. ``127.A.B.3`` (A.B
  random per cluster), and a long node name on it, ``shoptest1@127.A.B.1``; its AMQP
  listener, its distribution listener and its outgoing distribution connections all
  use that address. So "block a node's traffic" is two iptables DROP rules on its
  address (source and destination), which cut every connection it has, in both
  directions, without touching any other process;
- a private epmd on a port of its own (``ERL_EPMD_PORT``), an Erlang cookie of its
  own in a HOME of its own, an env file of its own (``RABBITMQ_CONF_ENV_FILE``, so
  ``/etc/rabbitmq/rabbitmq-env.conf`` is not read), a config, plugins file, data and
  logs per node, all under one temporary directory;
- an Erlang resolver file (``ERL_INETRC``) that maps the CLI tools' own node host
  (``<hostname>.localdomain``) to 127.0.0.1: without it, commands that make the
  cluster's nodes call back into the CLI (``list_queues``) hang until their timeout.

The nodes run as the user running the tests (no ``su rabbitmq``: the scripts under
``/usr/lib/rabbitmq/bin`` are called directly, not the ``/usr/sbin`` wrappers).
Blocking traffic needs root and ``iptables``; where it cannot work, ``can_block`` is
false and ``paused`` (SIGSTOP/SIGCONT of the node: a frozen node, not a partition)
is the closest substitute.

Every fault is recorded and undone by ``heal()`` (the ``cluster`` fixture calls it
after each test, pass or fail); ``close()`` stops the nodes by PID, removes the
iptables chain and deletes the directory. Blocks and pauses also have a watchdog
(a thread) that lifts them after ``limit`` seconds even if the test hangs. Only a
SIGKILL of the test process itself leaves nodes behind (they run in sessions of
their own): their command lines name ``/tmp/shoptest-rabbit-*``.

Cluster settings: ``cluster_partition_handling = pause_minority`` and
``net_ticktime`` 5 s, so a node cut off for longer than 5-6 s is seen as down by the
others and pauses itself as a minority until it sees them again.

Usage (import ``rabbit_cluster`` and ``cluster`` into a conftest)::

    async def test_x(cluster: RabbitCluster, unique: str) -> None:
        await cluster.declare_quorum_queue(f"q-{unique}")
        leader = await cluster.leader_of(f"q-{unique}")
        async with cluster.killed(leader) as began:
            new, elected = await cluster.wait_for_leader(
                f"q-{unique}", other_than=leader, since=began)

The first test to use the cluster pays for booting it (30-45 s on a busy 2-core
machine) within its own pytest timeout: give such tests 150 s or more.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
import pytest_asyncio

RABBITMQ_BIN = Path(os.environ.get("TEST_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
CLI_TIMEOUT = 30.0
BOOT_TIMEOUT = 90.0
NET_TICKTIME = 5  # seconds: a node cut off is seen as down after 5-6 s (default is 60)
QUORUM_ARGS: dict[str, Any] = {"x-queue-type": "quorum", "x-quorum-initial-group-size": 3}


class ClusterError(AssertionError):
    """A cluster operation failed or did not finish in time."""


class FaultUnavailable(RuntimeError):
    """This fault cannot be injected on this machine (e.g. no iptables, not root)."""


@dataclass(eq=False)
class ClusterNode:
    index: int
    name: str  # the Erlang node name, e.g. shoptest1@127.77.5.1
    host: str  # its own loopback address
    amqp_port: int
    dist_port: int
    directory: Path
    env: dict[str, str] = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    beam_pid: int | None = None

    @property
    def short(self) -> str:
        return self.name.split("@", 1)[0]

    @property
    def pid_file(self) -> Path:
        return self.directory / "beam.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "log" / f"{self.name}.log"

    @property
    def stdout_file(self) -> Path:
        return self.directory / "stdout.log"

    def url(self, vhost: str = "/", user: str = "guest", password: str = "guest") -> str:
        """AMQP URL of this node (``vhost`` as named, e.g. "/" or "orders")."""
        return (
            f"amqp://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.amqp_port}/{quote(vhost, safe='')}"
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass(frozen=True)
class QueueState:
    name: str
    leader: str | None
    members: tuple[str, ...]
    online: tuple[str, ...]


@dataclass(frozen=True)
class Recovery:
    """What a wait found and how long after ``since`` (the fault) it was true."""

    seconds: float
    state: QueueState


class RabbitCluster:
    """Three clustered RabbitMQ nodes (see the module docstring). Use ``start()`` /
    ``close()``, or the ``rabbit_cluster`` / ``cluster`` fixtures below."""

    def __init__(
        self,
        size: int = 3,
        *,
        base: Path | None = None,
        net_ticktime: int = NET_TICKTIME,
        keep_directory: bool = False,
    ) -> None:
        self.token = uuid.uuid4().hex[:8]
        self.directory = Path(tempfile.mkdtemp(prefix=f"shoptest-rabbit-{self.token}-", dir=base))
        self.keep_directory = keep_directory
        self.net_ticktime = net_ticktime
        self.cookie = secrets.token_hex(16).upper()
        octets = (random.randint(64, 250), random.randint(1, 250))
        self.hosts = [f"127.{octets[0]}.{octets[1]}.{i}" for i in range(1, size + 1)]
        self.epmd_port = _free_port(["127.0.0.1", *self.hosts], preferred=4381)
        self.chain = f"SHOPTEST-{self.token}"
        self._epmd: subprocess.Popen[bytes] | None = None
        self._chain_made = False
        self._lock = threading.Lock()
        self._killed: set[int] = set()
        self._app_stopped: set[int] = set()
        self._blocked: dict[int, threading.Timer] = {}
        self._paused: dict[int, threading.Timer] = {}
        self._vhosts: set[str] = set()
        self._users: set[str] = set()
        self._queues: set[tuple[str, str]] = set()
        self._closed = False
        self.boot_seconds = 0.0
        self.can_block, self.block_unavailable = _iptables_usable()
        self._write_shared_files()
        self.nodes = tuple(self._make_node(i, host) for i, host in enumerate(self.hosts, 1))

    # -- lifecycle ---------------------------------------------------------------

    def _write_shared_files(self) -> None:
        home = self.directory / "home"
        home.mkdir()
        cookie = home / ".erlang.cookie"
        cookie.write_text(self.cookie)
        cookie.chmod(0o400)
        (self.directory / "rabbitmq-env.conf").write_text("# empty: keep the host's out\n")
        short = socket.gethostname().split(".", 1)[0]
        names = sorted({short, f"{short}.localdomain", socket.getfqdn(), "localhost"})
        (self.directory / "inetrc").write_text(
            "{lookup, [file, native]}.\n"
            '{domain, "localdomain"}.\n'
            f"{{host, {{127,0,0,1}}, [{', '.join(json.dumps(n) for n in names)}]}}.\n"
        )

    def _base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RABBITMQ_", "ERL_")) and k not in {"HOME"}
        }
        env.update(
            HOME=str(self.directory / "home"),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_INETRC=str(self.directory / "inetrc"),
            RABBITMQ_CONF_ENV_FILE=str(self.directory / "rabbitmq-env.conf"),
            RABBITMQ_USE_LONGNAME="true",
            # The CLI's own distribution listener: any free port, loopback only (the
            # default range, 35672-35682, is shared with the host's CLI calls).
            RABBITMQ_CTL_DIST_PORT_MIN="0",
            RABBITMQ_CTL_DIST_PORT_MAX="0",
            RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            LC_ALL="C.UTF-8",
        )
        return env

    def _make_node(self, index: int, host: str) -> ClusterNode:
        directory = self.directory / f"node{index}"
        directory.mkdir()
        amqp_port = _free_port([host], preferred=5680 + index)
        dist_port = _free_port([host], preferred=25680 + index, anywhere=True)
        name = f"shoptest{index}@{host}"
        (directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = {host}:{amqp_port}\n"
            "cluster_partition_handling = pause_minority\n"
            f"cluster_name = shoptest-{self.token}\n"
            "loopback_users = none\n"
            "log.console = false\n"
            "log.file.level = info\n"
        )
        (directory / "enabled_plugins").write_text("[].\n")
        erl_ip = host.replace(".", ",")
        env = self._base_env()
        env.update(
            RABBITMQ_NODENAME=name,
            RABBITMQ_DIST_PORT=str(dist_port),
            RABBITMQ_CONFIG_FILE=str(directory / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(directory / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(directory / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(directory / "mnesia"),
            RABBITMQ_LOG_BASE=str(directory / "log"),
            RABBITMQ_PLUGINS_EXPAND_DIR=str(directory / "plugins-expand"),
            RABBITMQ_PID_FILE=str(directory / "beam.pid"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                "-start_epmd false"
                f" -kernel inet_dist_use_interface {{{erl_ip}}}"
                f" -kernel inet_dist_connect_options [{{ip,{{{erl_ip}}}}}]"
                f" -kernel net_ticktime {self.net_ticktime}"
            ),
        )
        return ClusterNode(index, name, host, amqp_port, dist_port, directory, env)

    async def start(self, *, timeout: float = BOOT_TIMEOUT) -> None:
        """Boot every node, cluster the others with the first (stop_app,
        join_cluster, start_app), wait until all run in one cluster."""
        atexit.register(self.close)
        began = time.monotonic()
        if not (RABBITMQ_BIN / "rabbitmq-server").exists():
            raise ClusterError(f"no rabbitmq-server under {RABBITMQ_BIN}")
        self._start_epmd()
        for node in self.nodes:
            self._spawn(node)
        first, *others = self.nodes
        await self._await_boot(first, timeout=timeout)
        for node in others:
            await self._await_listener(node, timeout=timeout)
            await self.ctl(node, "stop_app", timeout=timeout)
            await self.ctl(node, "join_cluster", first.name, timeout=timeout)
            await self.ctl(node, "start_app", timeout=timeout)  # returns once it runs
            node.beam_pid = _beam_pid(node)
        await self.wait_until_running(timeout=timeout)
        self.boot_seconds = time.monotonic() - began

    def _start_epmd(self) -> None:
        epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        addresses = ",".join(["127.0.0.1", *self.hosts])
        log = (self.directory / "epmd.log").open("ab")
        with log:
            self._epmd = subprocess.Popen(
                [epmd, "-port", str(self.epmd_port), "-address", addresses],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while not _listening("127.0.0.1", self.epmd_port):
            if self._epmd.poll() is not None or time.monotonic() > deadline:
                raise ClusterError(f"epmd did not start on port {self.epmd_port}")
            time.sleep(0.02)

    def _check_epmd(self) -> None:
        # Without our epmd, the CLI and the nodes would each start an `epmd -daemon`
        # of their own on its port, one that nobody would stop.
        if self._closed or self._epmd is None or self._epmd.poll() is not None:
            raise ClusterError("the cluster's epmd is not running (cluster closed?)")

    def _spawn(self, node: ClusterNode) -> None:
        self._check_epmd()
        node.pid_file.unlink(missing_ok=True)
        node.beam_pid = None
        with node.stdout_file.open("ab") as out:
            node.process = subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")],
                env=node.env,
                cwd=node.directory,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended by its id
            )

    async def _await_listener(self, node: ClusterNode, *, timeout: float) -> None:
        """Until the node accepts AMQP connections (its last boot steps), checked
        without the CLI: each CLI call starts an Erlang VM, seconds on a busy box."""
        deadline = time.monotonic() + timeout
        while not _listening(node.host, node.amqp_port):
            if not node.alive():
                raise ClusterError(f"{node.name} exited while booting:\n{self.log_tail(node)}")
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{node.name} did not boot in {timeout}s:\n{self.log_tail(node)}"
                )
            await asyncio.sleep(0.1)

    async def _await_boot(self, node: ClusterNode, *, timeout: float) -> None:
        """Until the node's app runs; then learn its beam.smp PID (pid file, checked
        to be the child of the ``rabbitmq-server`` script we started)."""
        await self._await_listener(node, timeout=timeout)
        await self.ctl(node, "await_startup", "--timeout", str(int(timeout)), timeout=timeout + 10)
        node.beam_pid = _beam_pid(node)

    def close(self) -> None:
        """Stop every node we started (by PID), our epmd, the iptables chain; delete
        the directory. Synchronous and idempotent: also registered with atexit."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        problems: list[str] = []
        for timer in [*self._blocked.values(), *self._paused.values()]:
            timer.cancel()
        try:
            self._remove_chain()
        except ClusterError as error:
            problems.append(str(error))
        for node in self.nodes:
            if node.process is None or not node.alive():
                continue
            # rabbit stops cleanly on SIGTERM (a paused node needs SIGCONT first)
            with contextlib.suppress(ProcessLookupError):
                if node.beam_pid:
                    os.kill(node.beam_pid, signal.SIGCONT)
                    os.kill(node.beam_pid, signal.SIGTERM)
                else:  # still booting: the script passes TERM on to it
                    os.killpg(node.process.pid, signal.SIGCONT)
                    os.kill(node.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                problems.append(f"{node.name} ignored SIGTERM: killed")
            # Whatever is left of the session we started for it (script, beam,
            # erl_child_setup, helpers), found by its session id in /proc.
            for pid in _session_members(node.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(5)
        if self._epmd is not None:
            self._epmd.kill()
            self._epmd.wait(5)
        if not self.keep_directory:
            shutil.rmtree(self.directory, ignore_errors=True)
        if problems:
            print("rabbit cluster teardown: " + "; ".join(problems))

    # -- command line tools ------------------------------------------------------

    async def cli(
        self, tool: str, node: ClusterNode, *args: str, timeout: float = CLI_TIMEOUT
    ) -> str:
        """Run ``tool -q -l -n <node> args...`` (rabbitmqctl, rabbitmq-queues,
        rabbitmq-diagnostics); its output, or ClusterError on failure/timeout."""
        self._check_epmd()
        command = [str(RABBITMQ_BIN / tool), "-q", "-l", "-n", node.name, *args]
        process = await asyncio.create_subprocess_exec(
            *command,
            env=self._base_env(),
            cwd=self.directory,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise ClusterError(f"{tool} -n {node.name} {' '.join(args)}: no answer in {timeout}s")
        except BaseException:
            process.kill()
            await process.wait()
            raise
        text = out.decode(errors="replace")
        if process.returncode != 0:
            raise ClusterError(f"{tool} -n {node.name} {' '.join(args)} failed:\n{text[-2000:]}")
        return text

    async def ctl(self, node: ClusterNode, *args: str, timeout: float = CLI_TIMEOUT) -> str:
        return await self.cli("rabbitmqctl", node, *args, timeout=timeout)

    async def queues_cli(self, node: ClusterNode, *args: str, timeout: float = CLI_TIMEOUT) -> str:
        return await self.cli("rabbitmq-queues", node, *args, timeout=timeout)

    async def diagnostics(self, node: ClusterNode, *args: str, timeout: float = CLI_TIMEOUT) -> str:
        return await self.cli("rabbitmq-diagnostics", node, *args, timeout=timeout)

    # -- inspection --------------------------------------------------------------

    def node(self, name: str) -> ClusterNode:
        """The node called ``name`` (full Erlang name or short, e.g. "shoptest2")."""
        for node in self.nodes:
            if name in (node.name, node.short):
                return node
        raise KeyError(name)

    def healthy_nodes(self) -> list[ClusterNode]:
        """Nodes with no fault of ours on them right now (may still be recovering)."""
        faulty = self._killed | self._app_stopped | set(self._blocked) | set(self._paused)
        return [n for n in self.nodes if n.index not in faulty]

    def _via(self, via: ClusterNode | None) -> ClusterNode:
        if via is not None:
            return via
        healthy = self.healthy_nodes()
        if not healthy:
            raise ClusterError("every node has a fault on it: pass via=")
        return healthy[0]

    async def cluster_status(self, via: ClusterNode | None = None) -> dict[str, Any]:
        out = await self.ctl(self._via(via), "cluster_status", "--formatter", "json")
        return dict(_json(out, "{"))

    async def running_nodes(self, via: ClusterNode | None = None) -> list[str]:
        return list((await self.cluster_status(via))["running_nodes"])

    async def queue_state(
        self, queue: str, *, vhost: str = "/", via: ClusterNode | None = None, timeout: float = 15
    ) -> QueueState | None:
        """Leader, members and online members of one queue (``list_queues``)."""
        states = await self.queue_states(vhost=vhost, via=via, timeout=timeout)
        return states.get(queue)

    async def queue_states(
        self, *, vhost: str = "/", via: ClusterNode | None = None, timeout: float = 15
    ) -> dict[str, QueueState]:
        """Every queue of ``vhost`` by name, in one ``list_queues`` (a CLI call costs
        seconds on a busy machine)."""
        out = await self.ctl(
            self._via(via),
            "list_queues",
            "-p",
            vhost,
            "name",
            "leader",
            "members",
            "online",
            "--formatter",
            "json",
            "-t",
            str(int(timeout)),
            timeout=timeout + 10,
        )
        states = {}
        for row in _json(out, "["):
            name, leader = str(row.get("name")), row.get("leader") or None
            states[name] = QueueState(
                name,
                str(leader) if leader else None,
                tuple(row.get("members") or ()),
                tuple(row.get("online") or ()),
            )
        return states

    async def quorum_status(
        self, queue: str, *, vhost: str = "/", via: ClusterNode | None = None
    ) -> list[dict[str, Any]]:
        """``rabbitmq-queues quorum_status``: each member's Raft state, term, indexes."""
        out = await self.queues_cli(
            self._via(via), "quorum_status", queue, "--vhost", vhost, "--formatter", "json"
        )
        return list(_json(out, "["))

    async def leader_of(
        self, queue: str, *, vhost: str = "/", via: ClusterNode | None = None
    ) -> ClusterNode:
        state = await self.queue_state(queue, vhost=vhost, via=via)
        if state is None or state.leader is None:
            raise ClusterError(f"queue {queue!r} has no leader now: {state}")
        return self.node(state.leader)

    async def wait_for_leader(
        self,
        queue: str,
        *,
        vhost: str = "/",
        other_than: ClusterNode | None = None,
        via: ClusterNode | None = None,
        since: float | None = None,
        timeout: float = 60.0,
    ) -> tuple[ClusterNode, Recovery]:
        """Poll until ``queue`` has a leader (not on ``other_than``) that is online."""

        def ok(state: QueueState) -> bool:
            return (
                state.leader is not None
                and state.leader in state.online
                and (other_than is None or state.leader != other_than.name)
            )

        recovery = await self._wait_queue(queue, ok, vhost, via, since, timeout, "a new leader")
        assert recovery.state.leader is not None
        return self.node(recovery.state.leader), recovery

    async def wait_for_members(
        self,
        queue: str,
        *,
        vhost: str = "/",
        count: int | None = None,
        via: ClusterNode | None = None,
        since: float | None = None,
        timeout: float = 90.0,
    ) -> Recovery:
        """Poll until ``queue`` has a leader and ``count`` (default: all nodes)
        members, all online."""
        want = len(self.nodes) if count is None else count

        def ok(state: QueueState) -> bool:
            return (
                state.leader is not None
                and len(state.members) >= want
                and set(state.members) <= set(state.online)
            )

        return await self._wait_queue(queue, ok, vhost, via, since, timeout, f"{want} members")

    async def _wait_queue(
        self,
        queue: str,
        ok: Callable[[QueueState], bool],
        vhost: str,
        via: ClusterNode | None,
        since: float | None,
        timeout: float,
        what: str,
    ) -> Recovery:
        start = time.monotonic() if since is None else since
        deadline = time.monotonic() + timeout
        last: QueueState | None = None
        error = ""
        while True:
            try:
                last = await self.queue_state(
                    queue,
                    vhost=vhost,
                    via=via,
                    timeout=max(1, min(10, deadline - time.monotonic())),
                )
                if last is not None and ok(last):
                    return Recovery(time.monotonic() - start, last)
            except ClusterError as e:  # a node on the way down or up: ask again
                error = str(e)[:500]
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"queue {queue!r}: not {what} within {timeout}s; last seen {last}; {error}"
                )
            await asyncio.sleep(0.25)

    async def wait_until_running(
        self, *, timeout: float = 120.0, via: ClusterNode | None = None
    ) -> float:
        """Until every node runs its app, in one cluster with no partition; seconds."""
        start = time.monotonic()
        want = {n.name for n in self.nodes}
        last: Any = None
        while True:
            try:
                status = await self.cluster_status(via)
                last = (status.get("running_nodes"), status.get("partitions"))
                if set(status["running_nodes"]) == want and not status.get("partitions"):
                    return time.monotonic() - start
            except ClusterError as error:
                last = str(error)[:500]
            if time.monotonic() - start > timeout:
                raise ClusterError(f"cluster not whole within {timeout}s: {last}")
            await asyncio.sleep(0.5)

    def log_mark(self, node: ClusterNode) -> int:
        """Where the node's log ends now (for ``log_since``)."""
        return node.log_file.stat().st_size if node.log_file.exists() else 0

    def log_since(self, node: ClusterNode, mark: int) -> str:
        """What the node logged after ``mark``."""
        with node.log_file.open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace")

    def log_tail(self, node: ClusterNode, lines: int = 30) -> str:
        parts = []
        for path in (node.stdout_file, node.log_file):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts)

    # -- vhosts and users --------------------------------------------------------

    async def add_vhost(self, name: str) -> None:
        await self.ctl(self._via(None), "add_vhost", name)
        self._vhosts.add(name)

    async def delete_vhost(self, name: str) -> None:
        await self.ctl(self._via(None), "delete_vhost", name)
        self._vhosts.discard(name)

    async def add_user(
        self, name: str, password: str, *, vhost: str | None = None, tags: Sequence[str] = ()
    ) -> None:
        """A user (with full permissions on ``vhost`` if given)."""
        via = self._via(None)
        await self.ctl(via, "add_user", name, password)
        self._users.add(name)
        if tags:
            await self.ctl(via, "set_user_tags", name, *tags)
        if vhost is not None:
            await self.ctl(via, "set_permissions", "-p", vhost, name, ".*", ".*", ".*")

    async def delete_user(self, name: str) -> None:
        await self.ctl(self._via(None), "delete_user", name)
        self._users.discard(name)

    async def delete_users(self, names: Sequence[str]) -> None:
        """Several users in one CLI call (each call starts an Erlang VM: seconds)."""
        if not names:
            return
        if any(not re.fullmatch(r"[A-Za-z0-9_.@-]+", name) for name in names):
            raise ClusterError(f"not a plain user name: {names}")
        users = ", ".join(f'<<"{name}">>' for name in names)
        await self.ctl(
            self._via(None),
            "eval",
            'lists:foreach(fun(U) -> rabbit_auth_backend_internal:delete_user(U, <<"shoptest">>)'
            f" end, [{users}]).",
        )
        self._users.difference_update(names)

    async def import_definitions(self, document: dict[str, Any]) -> None:
        """Users, vhosts and permissions from a definitions document (as ``shopctl
        setup --print-definitions`` prints it) in one CLI call, where one call per
        user and permission would take a minute; ``heal()`` deletes them."""
        path = self.directory / f"definitions-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(document))
        self._vhosts.update(vhost["name"] for vhost in document.get("vhosts", []))
        self._users.update(user["name"] for user in document.get("users", []))
        try:
            await self.ctl(self._via(None), "import_definitions", str(path), timeout=60)
        finally:
            path.unlink(missing_ok=True)

    async def declare_quorum_queue(
        self, name: str, *, via: ClusterNode | None = None, vhost: str = "/", replicas: int = 3
    ) -> None:
        """Declare a quorum queue through ``via``'s node (its leader usually starts
        there); ``heal()`` deletes it after the test."""
        node = self._via(via)
        self._queues.add((vhost, name))
        await declare_quorum_queue(node.url(vhost), name, replicas=replicas)

    async def delete_queue(self, name: str, *, vhost: str = "/") -> None:
        await self.ctl(self._via(None), "delete_queue", "-p", vhost, name)
        self._queues.discard((vhost, name))

    def urls(self, vhost: str = "/", user: str = "guest", password: str = "guest") -> list[str]:
        """Every node's AMQP URL, for a client that takes several."""
        return [n.url(vhost, user, password) for n in self.nodes]

    # -- faults ------------------------------------------------------------------

    async def kill(self, node: ClusterNode) -> float:
        """``kill -9`` the node's beam.smp; return the monotonic time of the kill,
        once the process is gone."""
        if not node.alive() or node.beam_pid is None:
            raise ClusterError(f"{node.name} is not running")
        self._killed.add(node.index)
        os.kill(node.beam_pid, signal.SIGKILL)
        at = time.monotonic()
        assert node.process is not None
        while node.process.poll() is None:  # the script exits once beam is gone
            if time.monotonic() - at > 15:
                raise ClusterError(f"{node.name}: still there 15s after SIGKILL")
            await asyncio.sleep(0.02)
        node.beam_pid = None
        return at

    async def restart(self, node: ClusterNode, *, timeout: float = BOOT_TIMEOUT) -> float:
        """Start a killed node again (same data); seconds until its app runs."""
        if node.alive():
            raise ClusterError(f"{node.name} still runs")
        start = time.monotonic()
        self._spawn(node)
        await self._await_boot(node, timeout=timeout)
        self._killed.discard(node.index)
        return time.monotonic() - start

    @asynccontextmanager
    async def killed(self, node: ClusterNode) -> AsyncIterator[float]:
        """``kill -9`` on entry (yields its time), restart on exit whatever happens."""
        at = await self.kill(node)
        try:
            yield at
        finally:
            await self.restart(node)

    async def stop_app(self, node: ClusterNode) -> float:
        self._app_stopped.add(node.index)
        at = time.monotonic()
        await self.ctl(node, "stop_app", timeout=60)
        return at

    async def start_app(self, node: ClusterNode, *, timeout: float = BOOT_TIMEOUT) -> None:
        await self.ctl(node, "start_app", timeout=timeout)
        await self.ctl(node, "await_startup", "--timeout", str(int(timeout)), timeout=timeout + 10)
        self._app_stopped.discard(node.index)

    @asynccontextmanager
    async def app_stopped(self, node: ClusterNode) -> AsyncIterator[float]:
        """``stop_app`` on entry (yields the time it began), ``start_app`` on exit."""
        at = await self.stop_app(node)
        try:
            yield at
        finally:
            await self.start_app(node)

    def block(self, node: ClusterNode, *, limit: float = 60.0) -> float:
        """Drop every packet from or to the node's address (AMQP, distribution, epmd
        on it, CLI) until ``unblock``, or ``limit`` seconds at the latest."""
        if not self.can_block:
            raise FaultUnavailable(f"cannot block traffic here: {self.block_unavailable}")
        with self._lock:
            if node.index in self._blocked:
                raise ClusterError(f"{node.name} is already blocked")
            self._ensure_chain()
            _iptables("-A", self.chain, "-s", node.host, "-j", "DROP")
            _iptables("-A", self.chain, "-d", node.host, "-j", "DROP")
            timer = threading.Timer(limit, self.unblock, (node,))
            timer.daemon = True
            self._blocked[node.index] = timer
            timer.start()
        return time.monotonic()

    def unblock(self, node: ClusterNode) -> None:
        """Remove the node's DROP rules (if iptables fails, the node stays recorded
        as blocked: ``heal`` and ``close`` try again)."""
        with self._lock:
            timer = self._blocked.get(node.index)
            if timer is None:
                return
            timer.cancel()
            _iptables_undo("-D", self.chain, "-s", node.host, "-j", "DROP")
            _iptables_undo("-D", self.chain, "-d", node.host, "-j", "DROP")
            del self._blocked[node.index]

    @asynccontextmanager
    async def blocked(self, node: ClusterNode, *, limit: float = 60.0) -> AsyncIterator[float]:
        """Traffic of the node cut for the block (yields the time it began)."""
        at = self.block(node, limit=limit)
        try:
            yield at
        finally:
            await asyncio.to_thread(self.unblock, node)

    def pause(self, node: ClusterNode, *, limit: float = 60.0) -> float:
        """SIGSTOP the node's beam.smp: frozen, not partitioned (its sockets stay
        open and the kernel still accepts connections). SIGCONT after ``limit``."""
        if node.beam_pid is None:
            raise ClusterError(f"{node.name} is not running")
        with self._lock:
            os.kill(node.beam_pid, signal.SIGSTOP)
            timer = threading.Timer(limit, self.resume, (node,))
            timer.daemon = True
            self._paused[node.index] = timer
            timer.start()
        return time.monotonic()

    def resume(self, node: ClusterNode) -> None:
        with self._lock:
            timer = self._paused.pop(node.index, None)
            if timer is None:
                return
            timer.cancel()
            if node.beam_pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.beam_pid, signal.SIGCONT)

    @asynccontextmanager
    async def paused(self, node: ClusterNode, *, limit: float = 60.0) -> AsyncIterator[float]:
        at = self.pause(node, limit=limit)
        try:
            yield at
        finally:
            self.resume(node)

    async def heal(self, *, timeout: float = 120.0) -> None:
        """Undo every fault still in place, delete the vhosts and users added since
        the last heal, and wait until the whole cluster runs again."""
        for node in self.nodes:
            await asyncio.to_thread(self.unblock, node)
            self.resume(node)
        for node in self.nodes:
            if not node.alive():
                await self.restart(node)
            self._killed.discard(node.index)
        for node in self.nodes:
            if node.index in self._app_stopped:
                await self.start_app(node)
        await self.wait_until_running(timeout=timeout)
        for vhost, queue in sorted(self._queues):
            if vhost not in self._vhosts:
                await self.delete_queue(queue, vhost=vhost)
        self._queues.clear()
        for vhost in sorted(self._vhosts):
            await self.delete_vhost(vhost)
        await self.delete_users(sorted(self._users))

    # -- iptables ----------------------------------------------------------------

    def _ensure_chain(self) -> None:
        if self._chain_made:
            return
        _iptables("-N", self.chain)
        self._chain_made = True
        # Loopback packets pass OUTPUT then INPUT: a DROP in either cuts them.
        _iptables("-I", "OUTPUT", "1", "-j", self.chain)
        _iptables("-I", "INPUT", "1", "-j", self.chain)

    def _remove_chain(self) -> None:
        with self._lock:
            if not self._chain_made:
                return
            self._blocked.clear()
            errors = []
            for args in (
                ("-D", "INPUT", "-j", self.chain),
                ("-D", "OUTPUT", "-j", self.chain),
                ("-F", self.chain),
                ("-X", self.chain),
            ):
                try:
                    _iptables_undo(*args)
                except ClusterError as error:
                    errors.append(str(error))
            self._chain_made = False
            if errors:
                raise ClusterError("; ".join(errors))


# -- helpers --------------------------------------------------------------------


def _iptables(*args: str) -> None:
    try:
        result = subprocess.run(
            ["iptables", "-w", "10", *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as error:  # e.g. uninstalled meanwhile
        raise ClusterError(f"iptables {' '.join(args)}: {error}") from error
    if result.returncode != 0:
        raise ClusterError(f"iptables {' '.join(args)}: {result.stderr.strip()}")


_GONE = ("does a matching rule exist", "No chain/target/match", "does not exist")


def _iptables_undo(*args: str, patience: float = 60.0) -> None:
    """Remove a rule or chain of ours: done if it is gone already; tried again for
    ``patience`` seconds while iptables cannot run (e.g. its package is being
    reinstalled by someone else on a shared machine)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            _iptables(*args)
            return
        except ClusterError as error:
            if any(marker in str(error) for marker in _GONE):
                return
            if time.monotonic() > deadline:
                raise
        time.sleep(1)


def _iptables_usable() -> tuple[bool, str]:
    if shutil.which("iptables") is None:
        return False, "iptables is not installed (apt-get install iptables)"
    if os.geteuid() != 0:
        return False, "iptables needs root"
    result = subprocess.run(
        ["iptables", "-w", "10", "-S", "OUTPUT"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        return False, f"iptables does not work here: {result.stderr.strip()}"
    return True, ""


def _free_port(hosts: Iterable[str], *, preferred: int, anywhere: bool = False) -> int:
    """``preferred`` if free on every address in ``hosts``, else one the kernel picks.

    ``anywhere``: nothing may listen on the port on any address either. RabbitMQ's
    boot checks its distribution port that way (a listen on 0.0.0.0), so a port
    another cluster's node holds on its own loopback address (a test run beside
    this one) would fail the boot with ``dist_port_already_used``."""
    addresses = list(hosts)
    for candidate in (preferred, *[0] * 5):
        port = candidate
        sockets: list[socket.socket] = []
        try:
            for host in addresses:
                s = socket.socket()
                sockets.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port))
                port = int(s.getsockname()[1])
            if anywhere:
                # With SO_REUSEADDR on every socket, this fails only if some socket
                # listens on the port (on any address), as RabbitMQ's check does.
                s = socket.socket()
                sockets.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", port))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise ClusterError(f"no free port on {addresses}")


def _session_members(sid: int) -> list[int]:
    """PIDs of the processes in session ``sid`` (one we started with setsid)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[3]) == sid:  # fields: state, ppid, pgrp, session, ...
            members.append(int(stat.parent.name))
    return members


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _beam_pid(node: ClusterNode) -> int:
    """The node's beam.smp PID from the pid file it writes, accepted only if it is
    the child of the ``rabbitmq-server`` script we started."""
    assert node.process is not None
    pid = int(node.pid_file.read_text().strip())
    stat = Path(f"/proc/{pid}/stat").read_text()
    ppid = int(stat.rsplit(")", 1)[1].split()[1])
    if ppid != node.process.pid:
        raise ClusterError(f"{node.name}: pid {pid} is not the child of {node.process.pid}")
    return pid


def _json(out: str, opener: str) -> Any:
    start = out.find(opener)
    if start < 0:
        raise ClusterError(f"no JSON in CLI output: {out[:500]}")
    return json.loads(out[start:])


# -- AMQP helpers for the scenarios ------------------------------------------------


async def declare_quorum_queue(url: str, name: str, *, replicas: int = 3) -> None:
    """A durable quorum queue with ``replicas`` members, declared through ``url``'s node."""
    connection = await aio_pika.connect(url, timeout=15)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(
            name,
            durable=True,
            arguments={**QUORUM_ARGS, "x-quorum-initial-group-size": replicas},
        )


async def publish_confirmed(url: str, queue: str, count: int, *, prefix: str = "m") -> list[str]:
    """Publish ``count`` persistent messages to ``queue`` (default exchange) with
    publisher confirms; return their message ids once all are confirmed."""
    ids = [f"{prefix}-{i}" for i in range(count)]
    connection = await aio_pika.connect(url, timeout=15)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = channel.default_exchange
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        body=message_id.encode(),
                        message_id=message_id,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=queue,
                    mandatory=True,
                    timeout=30,
                )
                for message_id in ids
            )
        )
    return ids


PROBE = "probe"


async def probe_until_usable(
    url: str,
    queue: str,
    *,
    since: float | None = None,
    timeout: float = 60.0,
    every: float = 0.5,
    attempt: float = 10.0,
) -> float:
    """Seconds from ``since`` until a publish through ``url``'s node to ``queue`` is
    confirmed: the queue has a leader and a quorum again. A new probe (a message of
    type "probe", on a connection of its own) starts every ``every`` seconds, each
    waiting up to ``attempt`` for its confirm; the first confirm counts. Consumers
    should ack and skip probes."""
    start = time.monotonic() if since is None else since
    deadline = time.monotonic() + timeout
    confirmed: list[float] = []
    errors: list[str] = []
    done = asyncio.Event()

    async def probe() -> None:
        try:
            connection = await aio_pika.connect(url, timeout=attempt)
            async with connection:
                channel = await connection.channel(publisher_confirms=True)
                await channel.default_exchange.publish(
                    aio_pika.Message(b"probe", type=PROBE, message_id=f"probe-{uuid.uuid4()}"),
                    routing_key=queue,
                    mandatory=True,
                    timeout=attempt,
                )
                confirmed.append(time.monotonic() - start)
                done.set()
        except Exception as error:  # refused, closed, nacked, timed out: others go on
            errors.append(repr(error))

    probes: set[asyncio.Task[None]] = set()
    try:
        while not done.is_set():
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"queue {queue!r} not usable through {url} within {timeout}s: "
                    f"{errors[-1:] or 'no answer'}"
                )
            probes.add(asyncio.create_task(probe()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), every)
        return min(confirmed)
    finally:
        for task in probes:
            task.cancel()
        await asyncio.gather(*probes, return_exceptions=True)


async def consume_ids(
    url: str, queue: str, expected: Iterable[str], *, timeout: float = 60.0
) -> dict[str, int]:
    """Consume (and ack) from ``queue`` until every id in ``expected`` was seen;
    probes are skipped. How many times each id came (more than once: redelivered)."""
    missing = set(expected)
    seen: dict[str, int] = {}
    connection = await aio_pika.connect(url, timeout=15)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=100)
        q = await channel.get_queue(queue, ensure=False)
        done = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            if message.type == PROBE or message.message_id is None:
                return
            seen[message.message_id] = seen.get(message.message_id, 0) + 1
            missing.discard(message.message_id)
            if not missing:
                done.set()

        await q.consume(on_message)
        if missing:
            try:
                await asyncio.wait_for(done.wait(), timeout)
            except TimeoutError:
                raise ClusterError(
                    f"{len(missing)} message(s) never consumed from {queue!r}, "
                    f"e.g. {sorted(missing)[:5]}"
                ) from None
    return seen


# -- pytest fixtures (import them into a conftest to use them) -----------------------


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def rabbit_cluster() -> AsyncIterator[RabbitCluster]:
    """One cluster for the session (booting three nodes costs tens of seconds).
    Set TEST_KEEP_CLUSTER_DIR=1 to keep its directory (logs) after the run."""
    cluster = RabbitCluster(keep_directory=os.environ.get("TEST_KEEP_CLUSTER_DIR") == "1")
    try:
        await cluster.start()
        print(f"\nrabbit cluster up in {cluster.boot_seconds:.1f}s: {cluster.directory}")
        yield cluster
    finally:
        cluster.close()


@pytest_asyncio.fixture
async def cluster(rabbit_cluster: RabbitCluster) -> AsyncIterator[RabbitCluster]:
    """The session's cluster, whole at the start of the test and healed after it."""
    await rabbit_cluster.wait_until_running(timeout=60)
    yield rabbit_cluster
    await rabbit_cluster.heal()
