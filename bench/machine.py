"""What machine the figures come from, and how busy its processes are."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg

from bench.infra import ADMIN_DSN, RabbitApi

CLK_TCK = os.sysconf("SC_CLK_TCK")
PACKAGES = (
    "aio-pika",
    "asyncpg",
    "sqlalchemy",
    "fastapi",
    "uvicorn",
    "uvloop",
    "httpx",
    "aiosmtpd",
)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _git() -> dict[str, Any]:
    def run(*args: str) -> str:
        return subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607 - whichever git is on PATH
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        ).stdout.strip()

    with contextlib.suppress(Exception):
        return {
            "commit": run("rev-parse", "--short", "HEAD"),
            "dirty": bool(run("status", "--porcelain")),
        }
    return {}


async def describe(api: RabbitApi) -> dict[str, Any]:
    overview = await api.overview()
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        pg_version = await connection.fetchval("SHOW server_version")
        pg_settings = {
            row["name"]: row["setting"]
            for row in await connection.fetch(
                "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
                [
                    "synchronous_commit",
                    "fsync",
                    "shared_buffers",
                    "max_connections",
                    "wal_sync_method",
                ],
            )
        }
    finally:
        await connection.close()
    versions = {}
    for package in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _mem_total_gib(),
        "kernel": platform.release(),
        "virtualized": "hypervisor" in _flags(),
        "python": sys.version.split()[0],
        "rabbitmq": overview.get("rabbitmq_version"),
        "erlang": overview.get("erlang_version"),
        "postgresql": pg_version,
        "postgresql_settings": pg_settings,
        "packages": versions,
        "load_average_at_start": list(os.getloadavg()),
        "git": _git(),
    }


def _flags() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    return ""


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_rss_mib(pid: int) -> tuple[float, float] | None:
    """(resident now, peak resident since it started) of ``pid`` in MiB, from
    ``VmRSS`` and ``VmHWM`` in ``/proc/<pid>/status``; None once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    kib = {}
    for line in lines:
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            kib[key] = int(value.split()[0])
    if "VmRSS" not in kib:
        return None  # a zombie: no memory left to count
    return kib["VmRSS"] / 1024, kib.get("VmHWM", kib["VmRSS"]) / 1024


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def pids_named(fragment: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if fragment in (entry / "comm").read_text():
                found.append(int(entry.name))
    return found


class CpuMeter:
    """CPU used by named groups of processes between two ``sample()`` calls, in cores.

    Tracked per pid: a process seen for the first time is a baseline, and one that
    is gone no longer counts, so groups whose members come and go (database
    backends, a restarted service) stay right.
    """

    def __init__(self) -> None:
        self.groups: dict[str, list[int]] = {}
        self._last: dict[int, float] = {}
        self._last_time = time.monotonic()
        self._last_machine = machine_cpu()

    def set_group(self, name: str, pids: list[int]) -> None:
        self.groups[name] = list(pids)

    def reset(self) -> None:
        self._last = {}
        for pids in self.groups.values():
            for pid in pids:
                seconds = process_cpu_seconds(pid)
                if seconds is not None:
                    self._last[pid] = seconds
        self._last_time = time.monotonic()
        self._last_machine = machine_cpu()

    def sample(self) -> dict[str, float]:
        now = time.monotonic()
        elapsed = max(now - self._last_time, 1e-6)
        result = {}
        current: dict[int, float] = {}
        for name, pids in self.groups.items():
            used = 0.0
            for pid in pids:
                seconds = process_cpu_seconds(pid)
                if seconds is None:
                    continue
                current[pid] = seconds
                if pid in self._last:
                    used += max(seconds - self._last[pid], 0.0)
            result[name] = used / elapsed
        self._last = current
        busy, total = machine_cpu()
        cores = os.cpu_count() or 1
        d_total = max(total - self._last_machine[1], 1e-6)
        result["machine"] = (busy - self._last_machine[0]) / d_total * cores
        self._last_machine = (busy, total)
        self._last_time = now
        return result
