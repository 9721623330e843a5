"""The shop as it runs for real, instrumented for the benchmark.

The services of a build (``bench.build``: this tree, or another commit's
worktree) as processes of their console scripts, each service with a database of
its own (migrated on start by that build's code), on a fresh vhost of the
shared broker where each service logs in as its own broker user (the same users
and permissions ``shopctl setup`` creates, under a per-run prefix), sending mail
to an SMTP sink process (``bench.smtp_sink``) whose delay can be changed while it
runs. Where the build has roles, the order service is two processes, ``order-api``
(HTTP) and ``order-worker`` (relay, consumer, jobs), measured apart and together
as ``order``. The bench talks to the shop only over HTTP, with bearer tokens
minted once per customer, watches queue depths over AMQP (passive declares:
exact, real time) and over the management API (what operators see, refreshed
every ``collect_statistics_interval``), and learns that an order's emails went
out from the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
from service_kit import priority
from shopctl.keys import customer_token, operator_token
from tests.support.accounts import ShopBroker, shop_broker_users
from tests.support.system import ServiceProcess, free_port
from tests.support.tokens import keys, service_env

from bench.build import SERVICES, Build, ProcessPlan
from bench.http1 import Http1Pool, TransportError
from bench.infra import (
    RABBITMQ_API,
    RabbitApi,
    Sandbox,
    backend_pids,
    finish_despite_cancel,
    sandbox,
)
from bench.machine import CpuMeter, pids_named, process_rss_mib

QUEUES = tuple(f"{name}.events" for name in SERVICES)
DLQS = tuple(f"{q}.dlq" for q in QUEUES)
FINAL_KINDS = {"confirmed", "cancelled"}
EXPERIMENTS = Path(__file__).parent / "experiments"
STOCK = 1_000_000  # per SKU: far more than any run orders
CUSTOMERS = 256  # distinct customers placing the orders, each with its own token
TOKEN_TTL = 24 * 3600  # tokens are minted once per stack: longer than any run


@dataclass
class OrderMail:
    """What the sink saw for one order: first arrival time per kind, and repeats."""

    kinds: dict[str, float] = field(default_factory=dict)
    repeats: int = 0


class SmtpSink:
    """Drives ``bench.smtp_sink`` in its own process and indexes what it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.orders: dict[str, OrderMail] = {}
        self.total = 0
        self.duplicates = 0
        self.arrivals: list[float] = []  # accept time of every message
        self.repeated: list[str] = []  # "<order id> <kind>" of every second copy
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._acks: asyncio.Queue[str] = asyncio.Queue()

    async def start(self, delay: float = 0.0) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.smtp_sink",
            "--port",
            str(self.port),
            "--delay",
            str(delay),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        if line.strip() != b"READY":
            raise RuntimeError(f"smtp sink did not start: {line!r}")
        self._reader = asyncio.create_task(self._read())

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def set_delay(self, seconds: float) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(f"delay {seconds}\n".encode())
        await self.process.stdin.drain()
        await asyncio.wait_for(self._acks.get(), 10)

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            parts = line.decode().split()
            if not parts:
                continue
            if parts[0] == "DELAY":
                self._acks.put_nowait(parts[1])
                continue
            if parts[0] != "M" or len(parts) != 4:
                continue
            _, order_id, kind, at = parts
            when = float(at)
            self.total += 1
            self.arrivals.append(when)
            mail = self.orders.setdefault(order_id, OrderMail())
            if kind in mail.kinds:
                mail.repeats += 1
                self.duplicates += 1
                self.repeated.append(f"{order_id} {kind}")
                continue
            mail.kinds[kind] = when
            if "received" in mail.kinds and FINAL_KINDS & mail.kinds.keys():
                waiter = self._waiters.pop(order_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(max(mail.kinds.values()))

    def complete_at(self, order_id: str) -> float | None:
        mail = self.orders.get(order_id)
        if mail and "received" in mail.kinds and FINAL_KINDS & mail.kinds.keys():
            return max(mail.kinds.values())
        return None

    async def wait_complete(self, order_id: str, timeout: float) -> float:
        """Wall time when the order's second email (received + confirmed/cancelled) arrived."""
        done = self.complete_at(order_id)
        if done is not None:
            return done
        waiter = self._waiters.get(order_id)
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[order_id] = waiter
        return await asyncio.wait_for(asyncio.shield(waiter), timeout)

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(Exception):
                assert self.process.stdin is not None
                self.process.stdin.write(b"quit\n")
                await self.process.stdin.drain()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


@dataclass
class Posted:
    """One POST /orders as the client saw it."""

    scheduled: float  # monotonic time the request was due (open loop) or sent
    sent: float  # monotonic time it went out
    sent_wall: float  # wall time it went out (to compare with server timestamps)
    latency: float  # response time, from ``sent``
    status: int  # HTTP status, 0 for a transport error
    order_id: str | None = None
    error: str | None = None
    attempts: int = 1
    first_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == 202 and self.order_id is not None


def _lower_priority(niceness: int) -> None:
    """In the child, before exec: what ``CPU_NICENESS`` does in a service, done
    from outside so that a build without the setting is lowered alike. The
    session is made here first: uvloop runs this before its own setsid, and the
    autogroup lowered would be the bench's."""
    if os.getsid(0) != os.getpid():
        os.setsid()
    priority.lower(niceness)


@dataclass
class BenchProcess(ServiceProcess):
    """A service process of a build: its console script with arguments (a role)."""

    script: Path = Path()
    args: tuple[str, ...] = ()
    cwd: Path | None = None
    niceness: int = 0  # added to the process's niceness before it starts, as `nice -n`

    async def start(self) -> None:
        log = self.log_path.open("ab")
        niceness = self.niceness
        self.process = await asyncio.create_subprocess_exec(
            str(self.script),
            *self.args,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=(lambda: _lower_priority(niceness)) if niceness else None,
        )
        log.close()


class Stack:
    def __init__(
        self,
        box: Sandbox,
        broker: ShopBroker,
        build: Build,
        workdir: Path,
        extra_env: dict[str, str],
        inflight: int,
        retries: int = 5,
        worker_nice: int = 0,
    ) -> None:
        self.box = box
        self.broker = broker
        self.build = build
        self.retries = retries
        self.worker_nice = worker_nice
        self.workdir = workdir
        self.extra_env = extra_env
        self.sink = SmtpSink()
        self.plans: dict[str, ProcessPlan] = {p.name: p for p in build.plan}
        self.services: dict[str, BenchProcess] = {}  # by process name (order-api, email, ...)
        self.products: list[dict[str, Any]] = []
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(120.0, connect=30.0),
            limits=httpx.Limits(
                max_connections=inflight + 16, max_keepalive_connections=inflight + 16
            ),
        )
        # Our own gate, FIFO and O(1), so httpx's pool never has a queue to scan.
        self.gate = asyncio.Semaphore(inflight)
        self.inflight = inflight
        # POST /orders, the load itself, goes through a lean client (bench/http1.py).
        self._orders: Http1Pool | None = None
        self.amqp: aio_pika.abc.AbstractConnection | None = None
        self._depth_channel: aio_pika.abc.AbstractChannel | None = None
        self.cpu = CpuMeter()
        self.posted: list[Posted] = []
        # Signed once (signing is the identity provider's CPU, not the shop's).
        self.customers: list[tuple[str, dict[str, str]]] = []
        self.operator: dict[str, str] = {}
        # Peak resident memory per process name (MiB, from VmHWM): through the whole
        # life of this stack, and since the last ``reset_memory_peaks()``.
        self.run_peak_rss: dict[str, float] = {}
        self._window_peak_rss: dict[str, float] = {}
        self.peaks_resettable = True

    def url(self, service: str) -> str:
        """Where ``service``'s HTTP API is (order: the order-api process, if split)."""
        for name, plan in self.plans.items():
            if plan.service == service and plan.http:
                return self.services[name].url
        raise KeyError(service)

    @property
    def database_names(self) -> list[str]:
        return list(self.box.databases.values())

    def _environment(self, service: str) -> dict[str, str]:
        base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "AMQP_", "PORT", "BROKER_USER_PREFIX"))
            and k not in ("VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT")
        }
        env = {
            **base_env,
            "AMQP_URL": self.broker.url(service),
            "BROKER_USER_PREFIX": self.broker.prefix,
            "DATABASE_URL": self.box.dsn(service),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.sink.port),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "SHUTDOWN_GRACE": "10",
            **service_env(),
            **self.extra_env,
        }
        if any(k.startswith("BENCH_X_") for k in self.extra_env):
            # Prototype patches (bench/experiments/sitecustomize.py), this run only.
            env["PYTHONPATH"] = str(EXPERIMENTS)
        return env

    async def start(self) -> None:
        await self.sink.start()
        for name, plan in self.plans.items():
            env = {
                **self._environment(plan.service),
                "PORT": str(free_port()),
                # Each build migrates its own fresh database with its own code; of
                # the split order service only the worker does. Nothing is sent
                # before every process is ready, i.e. before that is done.
                "MIGRATE_ON_START": "true" if plan.migrates else "false",
            }
            self.services[name] = BenchProcess(
                name,
                int(env["PORT"]),
                env,
                self.workdir / f"{name}.log",
                script=self.build.script(plan.service),
                args=plan.args,
                cwd=self.build.root,
                niceness=0 if plan.front_door else self.worker_nice,
            )
        for service in self.services.values():
            await service.start()
        # A loaded 2-core machine takes a minute or more to import and start them all.
        waits = [asyncio.ensure_future(s.wait_ready(timeout=180)) for s in self.services.values()]
        try:
            await asyncio.gather(*waits)
        finally:
            for wait in waits:  # one failed: the others stop waiting too
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        # Robust: other work on this machine may restart the shared broker.
        self.amqp = await aio_pika.connect_robust(self.box.amqp_url)
        signing = keys().signing
        self.operator = _bearer(operator_token(signing, ttl=TOKEN_TTL))
        for _ in range(CUSTOMERS):
            customer = f"bench-{uuid.uuid4().hex[:12]}"
            self.customers.append(
                (customer, _bearer(customer_token(signing, customer, ttl=TOKEN_TTL)))
            )
        response = await self.http.get(f"{self.url('order')}/products")
        response.raise_for_status()
        self.products = list(response.json())
        for product in self.products:
            response = await self.http.put(
                f"{self.url('inventory')}/stock/{product['sku']}",
                json={"available": STOCK},
                headers=self.operator,
            )
            response.raise_for_status()
        await self.refresh_cpu_groups()
        self.cpu.reset()

    async def refresh_cpu_groups(self) -> None:
        by_service: dict[str, list[int]] = {}
        for name, service in self.services.items():
            running = service.process is not None and service.process.returncode is None
            pids = [service.process.pid] if running and service.process else []
            self.cpu.set_group(name, pids)
            by_service.setdefault(self.plans[name].service, []).extend(pids)
        for group, members in by_service.items():
            if group not in self.services:  # "order": order-api + order-worker
                self.cpu.set_group(group, members)
        with contextlib.suppress(Exception):
            self.cpu.set_group("postgres", await backend_pids(self.database_names))
        self.cpu.set_group("postgres (all dbs)", pids_named("postgres"))
        self.cpu.set_group("rabbitmq", pids_named("beam.smp"))
        self.cpu.set_group("smtp sink", [self.sink.pid])
        self.cpu.set_group("bench client", [os.getpid()])

    # ---- effects ----------------------------------------------------------------

    async def effects(self) -> dict[str, int | None]:
        """What the shop's databases hold, to count effects between two snapshots:
        orders, stock on hand (available + reserved, over every SKU) and authorized
        payments. A figure the build's schema does not have is None."""
        queries = {
            "orders": ("order", "SELECT count(*) FROM orders"),
            "stock_on_hand": ("inventory", "SELECT sum(available + reserved) FROM stock"),
            "authorized_payments": (
                "payment",
                "SELECT count(*) FROM payments WHERE status = 'AUTHORIZED'",
            ),
        }
        out: dict[str, int | None] = {}
        for key, (service, sql) in queries.items():
            out[key] = None
            with contextlib.suppress(Exception):
                connection = await asyncpg.connect(self.box.dsn(service), timeout=10)
                try:
                    value = await connection.fetchval(sql, timeout=30)
                    out[key] = int(value) if value is not None else None
                finally:
                    await connection.close()
        return out

    # ---- memory -----------------------------------------------------------------

    def memory(self) -> dict[str, float]:
        """Resident memory (MiB) of every running service process, by process name;
        folds each one's peak (VmHWM) into the run's and the window's peaks."""
        now: dict[str, float] = {}
        for name, service in self.services.items():
            process = service.process
            if process is None or process.returncode is not None:
                continue
            got = process_rss_mib(process.pid)
            if got is None:
                continue
            rss, peak = got
            now[name] = round(rss, 1)
            for peaks in (self.run_peak_rss, self._window_peak_rss):
                peaks[name] = round(max(peaks.get(name, 0.0), peak), 1)
        return now

    def reset_memory_peaks(self) -> None:
        """Start a new window for ``window_peak_rss()``: the kernel's peak of each
        service process is reset to its current RSS (``clear_refs`` 5, Linux ≥ 4.0,
        our own processes); where that is refused, the window's peak is the
        process's peak since it started (``peaks_resettable`` says which)."""
        self.memory()  # the run's peaks keep what the kernel is about to forget
        self._window_peak_rss = {}
        for service in self.services.values():
            process = service.process
            if process is None or process.returncode is not None:
                continue
            try:
                Path(f"/proc/{process.pid}/clear_refs").write_text("5")
            except OSError:
                self.peaks_resettable = False

    def window_peak_rss(self) -> dict[str, float]:
        """Peak RSS (MiB) per process since ``reset_memory_peaks()``."""
        self.memory()
        return dict(self._window_peak_rss)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.memory()  # the last look at the peaks, before the processes go
        with contextlib.suppress(Exception):
            await asyncio.gather(
                *(s.stop() for s in self.services.values()), return_exceptions=True
            )
        if self.amqp is not None:
            with contextlib.suppress(Exception):
                await self.amqp.close()
        await self.sink.stop()
        await self.http.aclose()
        if self._orders is not None:
            await self._orders.close()

    async def restart(self, name: str) -> None:
        await self.services[name].start()
        await self.services[name].wait_ready(timeout=120)
        await self.refresh_cpu_groups()

    # ---- load -----------------------------------------------------------------

    def order_body(self) -> tuple[dict[str, Any], dict[str, str]]:
        """A new order by one of the customers, and that customer's Authorization."""
        product = random.choice(self.products)  # noqa: S311
        customer, authorization = random.choice(self.customers)  # noqa: S311
        body = {
            "customer_id": customer,
            "email": "buyer@example.com",
            "items": [{"sku": product["sku"], "quantity": 1}],
            "payment_token": "tok_visa",
        }
        return body, authorization

    async def post_order(self, scheduled: float | None = None) -> Posted:
        """POST /orders as a careful client: an Idempotency-Key, and on 503 (or a
        broken connection) a retry after Retry-After, up to ``self.retries`` times.

        The request keeps its in-flight slot while it waits to retry (a user keeps
        their connection), so a retry does not queue behind later requests.
        Latency runs from the first send to the final answer; ``first_status``
        keeps what the first attempt got, so shed load stays visible.
        """
        body, authorization = self.order_body()
        payload = json.dumps(body).encode()
        headers = {"Idempotency-Key": uuid.uuid4().hex, **authorization}
        if self._orders is None:
            url = httpx.URL(self.url("order"))
            self._orders = Http1Pool(url.host, url.port or 80, size=self.inflight)
        first_status: int | None = None
        attempts = 0
        async with self.gate:
            sent, sent_wall = time.monotonic(), time.time()
            while True:
                attempts += 1
                retry_after = 1.0
                order_id: str | None
                error: str | None
                try:
                    answer = await self._orders.post("/orders", payload, headers)
                except TransportError as exc:
                    status, order_id, error = 0, None, repr(exc)
                else:
                    status, order_id, error = answer.status, None, None
                    if status == 202:
                        order_id = str(json.loads(answer.body)["id"])
                    else:
                        error = f"{status}: {answer.body[:200].decode(errors='replace')}"
                        with contextlib.suppress(ValueError):
                            retry_after = float(answer.headers.get("retry-after", "1"))
                if first_status is None:
                    first_status = status
                if status in (0, 503) and attempts <= self.retries:
                    await asyncio.sleep(min(max(retry_after, 0.1), 5.0))
                    continue
                break
        record = Posted(
            scheduled or sent,
            sent,
            sent_wall,
            time.monotonic() - sent,
            status,
            order_id,
            error,
            attempts=attempts,
            first_status=first_status,
        )
        self.posted.append(record)
        return record

    async def order(self, order_id: str) -> dict[str, Any] | None:
        async with self.gate:
            response = await self.http.get(
                f"{self.url('order')}/orders/{order_id}", headers=self.operator
            )
        return dict(response.json()) if response.status_code == 200 else None

    async def orders(
        self, order_ids: list[str], concurrency: int = 16
    ) -> dict[str, dict[str, Any] | None]:
        """GET every order (for its status history), ``concurrency`` at a time."""
        out: dict[str, dict[str, Any] | None] = {}
        queue = list(order_ids)

        async def worker() -> None:
            while queue:
                order_id = queue.pop()
                try:
                    out[order_id] = await self.order(order_id)
                except httpx.HTTPError:
                    out[order_id] = None

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return out

    # ---- observation ------------------------------------------------------------

    async def queue_depths(self) -> dict[str, int]:
        """Ready messages per queue, exact and current (AMQP passive declare).

        Empty while the broker cannot be asked (it is restarting, say).
        """
        assert self.amqp is not None
        depths: dict[str, int] = {}
        try:
            if self._depth_channel is None or self._depth_channel.is_closed:
                self._depth_channel = await self.amqp.channel()
            for name in (*QUEUES, *DLQS):
                # robust=False: a robust channel answers passive declares from a cache.
                queue = await self._depth_channel.declare_queue(
                    name, passive=True, timeout=5, robust=False
                )
                depths[name] = int(queue.declaration_result.message_count or 0)
        except (aio_pika.exceptions.AMQPError, ConnectionError, TimeoutError, RuntimeError):
            self._depth_channel = None
            return {}
        return depths

    async def wait_quiet(self, *, timeout: float = 300, settle: float = 2.0) -> float:
        """Wait until every queue is empty and no mail has arrived for ``settle`` s."""
        started = time.monotonic()
        last_total = -1
        calm_since = time.monotonic()
        while time.monotonic() - started < timeout:
            depths = await self.queue_depths()
            busy = (
                not depths or any(depths.get(q, 0) for q in QUEUES) or self.sink.total != last_total
            )
            last_total = self.sink.total
            if busy:
                calm_since = time.monotonic()
            elif time.monotonic() - calm_since >= settle:
                return time.monotonic() - started
            await asyncio.sleep(0.25)
        return time.monotonic() - started


@asynccontextmanager
async def running_stack(
    api: RabbitApi,
    build: Build,
    *,
    extra_env: dict[str, str] | None = None,
    inflight: int = 128,
    retries: int = 5,
    keep_logs: Path | None = None,
    worker_nice: int = 0,
) -> AsyncIterator[Stack]:
    # Teardown runs to its end even if cancelled again meanwhile (a second Ctrl-C):
    # processes stopped, then the broker users, the vhost and the databases dropped.
    stack = AsyncExitStack()
    try:
        box = await stack.enter_async_context(sandbox(SERVICES, api))
        # The services' own broker users on this vhost, as ``shopctl setup`` makes
        # them: consumers believe an event only from its owner's user.
        prefix = box.vhost.replace("-", "") + "_"
        broker = await stack.enter_async_context(
            shop_broker_users(box.amqp_url, RABBITMQ_API, prefix)
        )
        workdir = keep_logs or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-"))
        )
        workdir.mkdir(parents=True, exist_ok=True)
        shop = Stack(box, broker, build, workdir, extra_env or {}, inflight, retries, worker_nice)
        try:
            await shop.start()
            yield shop
        finally:
            await finish_despite_cancel(shop.stop())
    finally:
        await finish_despite_cancel(stack.aclose())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
