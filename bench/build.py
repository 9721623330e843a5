"""Which services the bench runs: this tree's, or another commit's in a git worktree.

A ``Build`` is a checkout with its own environment (``.venv/bin/<svc>-service``)
and what its console scripts can do, probed from their ``--help``: an older
commit may have no ``--role`` (the order service then runs as one process).
Each build migrates its own fresh databases on start (``MIGRATE_ON_START``), so a
different migrations layout does not matter; of the split order service only the
worker migrates, and the bench waits for every process to be ready before it
sends anything. Everything else the
bench sends (bearer tokens, per-service broker users, BROKER_USER_PREFIX) is
harmless to a build that predates it: it ignores the header and the variables,
and logs in as whichever user its AMQP_URL names.

``worktree_build(ref)`` makes one: ``git worktree add`` into a temp dir, then
``uv sync --frozen --all-packages`` there (into the worktree's own ``.venv``);
the worktree is removed when the block ends, also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("order", "inventory", "payment", "email")
PROBE_TIMEOUT = 180.0  # importing a service on a busy 2-core machine takes 10-20 s


@dataclass(frozen=True)
class Capabilities:
    """What ``<svc>-service`` of a build accepts (all services share service_kit's CLI)."""

    serve: bool  # a ``serve`` command (else: no arguments at all)
    roles: tuple[str, ...]  # choices of ``serve --role``; () if there is none

    @property
    def split_order(self) -> bool:
        """The order service can run as an HTTP process and a worker process."""
        return {"api", "worker"} <= set(self.roles)


def parse_capabilities(top_help: str, serve_help: str) -> Capabilities:
    """From ``order-service --help`` and ``order-service serve --help``.

    A CLI with subcommands prints ``{serve,migrate}`` in the first; a positional
    ``command`` (older) prints the same and ignores ``serve`` in the second,
    which then shows no ``--role``.
    """
    commands = re.search(r"\{([a-z,_-]+)\}", top_help)
    names = set(commands.group(1).split(",")) if commands else set()
    role = re.search(r"--role\s+\{([^}]*)\}", serve_help)
    roles = tuple(r.strip() for r in role.group(1).split(",") if r.strip()) if role else ()
    return Capabilities(serve="serve" in names, roles=roles)


@dataclass(frozen=True)
class ProcessPlan:
    """One service process: its name in the bench (CPU group, log file), its
    service, the arguments of ``<service>-service``, whether it serves the
    service's HTTP API (the bench sends its requests there), whether it
    migrates the service's database on start (one process per service does) and
    whether it takes the orders (the front door, never run at a lower priority)."""

    name: str
    service: str
    args: tuple[str, ...]
    http: bool = True
    migrates: bool = True
    front_door: bool = False


def process_plan(caps: Capabilities) -> list[ProcessPlan]:
    """order-api + order-worker where the build has roles, else one order process;
    every other service as one process (``--role all`` where roles exist)."""
    plan: list[ProcessPlan] = []
    for service in SERVICES:
        if service == "order" and caps.split_order:
            plan.append(
                ProcessPlan(
                    "order-api",
                    "order",
                    ("serve", "--role", "api"),
                    migrates=False,
                    front_door=True,
                )
            )
            plan.append(
                ProcessPlan("order-worker", "order", ("serve", "--role", "worker"), http=False)
            )
        elif "all" in caps.roles:
            plan.append(
                ProcessPlan(
                    service, service, ("serve", "--role", "all"), front_door=service == "order"
                )
            )
        else:
            args = ("serve",) if caps.serve else ()
            plan.append(ProcessPlan(service, service, args, front_door=service == "order"))
    return plan


@dataclass(frozen=True)
class Build:
    label: str  # "working tree" or the ref asked for
    commit: str  # short hash ("+dirty" when the working tree has changes)
    root: Path  # the checkout; the services run with it as their working directory
    bin_dir: Path  # where its console scripts are
    caps: Capabilities

    def script(self, service: str) -> Path:
        return self.bin_dir / f"{service}-service"

    @property
    def plan(self) -> list[ProcessPlan]:
        return process_plan(self.caps)

    def describe(self) -> dict[str, object]:
        return {
            "label": self.label,
            "commit": self.commit,
            "root": str(self.root),
            "processes": {p.name: " ".join(p.args) for p in self.plan},
        }


async def probe(bin_dir: Path) -> Capabilities:
    script = str(bin_dir / "order-service")

    async def help_of(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            script,
            *args,
            "--help",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=_clean_env(),
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), PROBE_TIMEOUT)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        return out.decode(errors="replace")

    top, serve = await asyncio.gather(help_of(), help_of("serve"))
    if "usage:" not in top:
        raise RuntimeError(f"{script} --help did not print a usage:\n{top[-2000:]}")
    return parse_capabilities(top, serve)


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(  # noqa: S603
        ["git", *args],  # noqa: S607 - whichever git is on PATH
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()


def _clean_env() -> dict[str, str]:
    """The environment without the bench's own virtualenv (a build uses its own)."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONHOME", "PYTHONPATH")
    }


async def current_build() -> Build:
    """This tree, with the environment the bench itself runs in."""
    bin_dir = Path(sys.executable).parent
    commit = "?"
    with contextlib.suppress(Exception):
        commit = _git("rev-parse", "--short", "HEAD")
        if _git("status", "--porcelain"):
            commit += "+dirty"
    return Build("working tree", commit, REPO, bin_dir, await probe(bin_dir))


@asynccontextmanager
async def worktree_build(ref: str, log: Callable[[str], None] = print) -> AsyncIterator[Build]:
    """``ref`` checked out in a temporary git worktree with its own ``.venv``."""
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except subprocess.CalledProcessError:
        raise RuntimeError(f"{ref!r} is not a commit of this repository") from None
    short = commit[:9]
    parent = Path(tempfile.mkdtemp(prefix=f"bench-compare-{short}-"))
    tree = parent / "tree"
    added = False
    try:
        log(f"git worktree add {tree} {short}")
        added = True  # removed at the end even if this is interrupted half way
        await asyncio.to_thread(_git, "worktree", "add", "--detach", str(tree), commit)
        uv = shutil.which("uv") or "uv"
        log(f"uv sync --frozen --all-packages in {tree}")
        process = await asyncio.create_subprocess_exec(
            uv,
            "sync",
            "--frozen",
            "--all-packages",
            "--quiet",
            cwd=tree,
            env=_clean_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await process.communicate()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            raise RuntimeError(f"uv sync failed in the worktree of {ref}:\n{out.decode()[-3000:]}")
        bin_dir = tree / ".venv" / "bin"
        yield Build(ref, short, tree, bin_dir, await probe(bin_dir))
    finally:
        # Synchronous on purpose: this also runs while the run is being cancelled.
        if added:
            with contextlib.suppress(Exception):
                _git("worktree", "remove", "--force", str(tree))
                log(f"git worktree remove {tree}")
        shutil.rmtree(parent, ignore_errors=True)
