"""The front door alone: how many POST /orders one order-api process takes.

No consumers, no relay, no other service: one ``order-service serve --role api``
of a checkout (``--root``, e.g. a worktree of another commit) on a fresh
database of its own, offered ``--orders`` POSTs with ``--inflight`` in flight
through the lean client (bench/http1.py). Prints one JSON line: POSTs/s, the
API's CPU per POST and cores, the client's CPU per POST. For A/B, run it on
two roots in turn, alternating (A B B A), as the bench does::

    uv run --group bench python -m bench.frontdoor --root /tmp/worktree-of-REF
    uv run --group bench python -m bench.frontdoor --root .
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from tests.support.system import free_port
from tests.support.tokens import customer, service_env

from bench.http1 import Http1Pool
from bench.infra import ADMIN_DSN, dsn_for
from bench.machine import process_cpu_seconds
from bench.stack import BenchProcess

CUSTOMERS = 64
WARM_UP = 100


async def measure(root: Path, orders: int, inflight: int) -> dict[str, object]:
    database = f"bench_frontdoor_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{database}"')
    port = free_port()
    env = {
        **os.environ,
        **service_env(),
        "DATABASE_URL": dsn_for(database),
        "PORT": str(port),
        "MIGRATE_ON_START": "true",
        "LOG_FORMAT": "json",
    }
    api = BenchProcess(
        "order-api",
        port,
        env,
        Path(tempfile.gettempdir()) / f"{database}.log",  # shown if it fails to start
        script=root / ".venv/bin/order-service",
        args=("serve", "--role", "api"),
        cwd=root,
    )
    pool = Http1Pool("127.0.0.1", port, size=inflight)
    try:
        await api.start()
        await api.wait_ready(timeout=60)
        assert api.process is not None
        pid = api.process.pid
        tokens = [customer(f"frontdoor-{n}") for n in range(CUSTOMERS)]
        gate = asyncio.Semaphore(inflight)
        statuses: dict[int, int] = {}

        async def post(n: int) -> None:
            body = {
                "customer_id": f"frontdoor-{n % CUSTOMERS}",
                "email": "buyer@example.com",
                "items": [{"sku": "MOUSE-01", "quantity": 1}],
                "payment_token": "tok_visa",
            }
            headers = {**tokens[n % CUSTOMERS], "Idempotency-Key": uuid.uuid4().hex}
            async with gate:
                answer = await pool.post("/orders", json.dumps(body).encode(), headers)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1

        await asyncio.gather(*(post(n) for n in range(WARM_UP)))
        statuses.clear()
        api_before, own_cpu, started = _cpu(pid), time.process_time(), time.monotonic()
        await asyncio.gather(*(post(n) for n in range(orders)))
        seconds = time.monotonic() - started
        api_cpu = _cpu(pid) - api_before
        own_cpu = time.process_time() - own_cpu
        return {
            "root": str(root),
            "orders": orders,
            "inflight": inflight,
            "seconds": round(seconds, 2),
            "posts_per_s": round(orders / seconds, 1),
            "api_cpu_ms_per_post": round(api_cpu / orders * 1000, 2),
            "api_cores": round(api_cpu / seconds, 2),
            "client_cpu_ms_per_post": round(own_cpu / orders * 1000, 2),
            "statuses": statuses,
        }
    finally:
        await pool.close()
        await api.stop()
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        await admin.close()


def _cpu(pid: int) -> float:
    seconds = process_cpu_seconds(pid)
    if seconds is None:
        raise RuntimeError(f"the order API (pid {pid}) has exited")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.frontdoor", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the checkout to run")
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--inflight", type=int, default=32)
    args = parser.parse_args()
    import uvloop

    print(json.dumps(uvloop.run(measure(args.root.resolve(), args.orders, args.inflight))))


if __name__ == "__main__":
    main()
