"""Scenario 1, the floor: what the servers do for a bare client on this machine.

- PostgreSQL: single-row ``INSERT`` + ``COMMIT`` (autocommit) with asyncpg, on a
  database of its own, by 1 connection and by ``pg_connections`` at once.
- RabbitMQ: persistent publish with publisher confirms (one at a time, and
  ``publish_window`` in flight), then consume with manual ack
  (prefetch ``prefetch``), on a queue of its own, quorum like the shop's queues
  and classic for reference.

The census (what ONE order costs in commits, publishes and deliveries) needs the
running shop: see ``census`` below, run by the CLI once the stack is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg

from bench.infra import RabbitApi, sandbox
from bench.machine import CpuMeter, pids_named
from bench.stats import rnd, summarize
from bench.ui import Ui

BODY = json.dumps(
    {
        "id": str(uuid.uuid4()),
        "type": "order.created",
        "version": 1,
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "correlation_id": str(uuid.uuid4()),
        "data": {
            "order_id": str(uuid.uuid4()),
            "customer_id": "cust-12345678",
            "email": "buyer@example.com",
            "items": [{"sku": "MOUSE-01", "quantity": 1, "unit_price": "29.50"}],
            "total": "29.50",
            "currency": "EUR",
            # As long as a real one: a JWE sealed for the payment service.
            "sealed_payment_token": "eyJ" + "x" * 208,
        },
    }
).encode()


@dataclass(frozen=True)
class FloorConfig:
    seconds: float = 8.0
    pg_connections: int = 16
    publish_window: int = 64
    prefetch: int = 64


async def _measure(
    ui: Ui,
    label: str,
    seconds: float,
    workers: int,
    op: Callable[[int], Awaitable[None]],
    unit: str,
) -> dict[str, Any]:
    """Run ``op(worker)`` in ``workers`` loops for ``seconds``: rate, latency, CPU."""
    latencies: list[float] = []
    cpu = _cpu_meter()
    async with ui.phase(label, seconds=seconds, status=lambda: f"{len(latencies)} {unit}"):
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(index: int) -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await op(index)
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker(i) for i in range(workers)))
        elapsed = time.perf_counter() - started
    cores = cpu.sample()
    return {
        "operations": len(latencies),
        "rate": rnd(len(latencies) / elapsed),
        "latency_ms": summarize(latencies),
        "cpu_cores": {k: round(v, 2) for k, v in cores.items()},
        # This client's CPU per operation: what the driver costs in Python.
        "client_cpu_ms_per_op": round(
            cores["bench client"] * elapsed * 1000 / max(len(latencies), 1), 3
        ),
    }


def _cpu_meter() -> CpuMeter:
    """Who is busy during a floor measurement: this client, the servers, the rest."""
    meter = CpuMeter()
    meter.set_group("bench client", [os.getpid()])
    meter.set_group("postgres", pids_named("postgres"))
    meter.set_group("rabbitmq", pids_named("beam.smp"))
    meter.reset()
    return meter


async def pg_floor(dsn: str, config: FloorConfig, ui: Ui) -> dict[str, Any]:
    setup = await asyncpg.connect(dsn)
    await setup.execute(
        "CREATE TABLE floor (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event_id uuid"
        " NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
    )
    await setup.close()
    results = {}
    body = BODY.decode()
    for connections in (1, config.pg_connections):
        pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
        assert pool is not None
        conns = [await pool.acquire() for _ in range(connections)]
        statements = [
            await c.prepare("INSERT INTO floor (event_id, body) VALUES ($1, $2)") for c in conns
        ]

        async def insert(index: int, statements: list[Any] = statements) -> None:
            await statements[index].fetch(uuid.uuid4(), body)

        measured = await _measure(
            ui, f"floor: pg insert+commit ×{connections}", config.seconds, connections, insert,
            "commits",
        )  # fmt: skip
        for c in conns:
            await pool.release(c)
        await pool.close()
        results[f"connections_{connections}"] = {"connections": connections, **measured}
    return results


async def amqp_floor(amqp_url: str, config: FloorConfig, ui: Ui) -> dict[str, Any]:
    connection = await aio_pika.connect(amqp_url)
    results: dict[str, Any] = {}
    try:
        for queue_type in ("quorum", "classic"):
            results[queue_type] = await _amqp_one(connection, queue_type, config, ui)
    finally:
        await connection.close()
    return results


def _message() -> aio_pika.Message:
    return aio_pika.Message(
        body=BODY,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(uuid.uuid4()),
        correlation_id=str(uuid.uuid4()),
        type="order.created",
        headers={"x-causation-id": str(uuid.uuid4()), "x-schema-version": 1},
    )


async def _amqp_one(
    connection: aio_pika.abc.AbstractConnection, queue_type: str, config: FloorConfig, ui: Ui
) -> dict[str, Any]:
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    exchange = await channel.declare_exchange(
        f"floor.{queue_type}", aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(
        f"floor.{queue_type}", durable=True, arguments={"x-queue-type": queue_type}
    )
    await queue.bind(exchange, routing_key="order.created")

    async def publish(_: int) -> None:
        await exchange.publish(_message(), "order.created", mandatory=True, timeout=10)

    out: dict[str, Any] = {}
    published = 0
    for window in (1, config.publish_window):
        seconds = config.seconds / 2 if window == 1 else config.seconds
        measured = await _measure(
            ui, f"floor: {queue_type} publish+confirm ×{window}", seconds, window, publish,
            "confirmed",
        )  # fmt: skip
        published += measured["operations"]
        out[f"publish_window_{window}"] = {"in_flight": window, **measured}

    # Consume everything just published, acking each message as the shop does.
    await channel.set_qos(prefetch_count=config.prefetch)
    consumed = 0
    done = asyncio.Event()

    async def on_message(incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal consumed
        await incoming.ack()
        consumed += 1
        if consumed >= published:
            done.set()

    cpu = _cpu_meter()
    async with ui.phase(
        f"floor: {queue_type} consume+ack",
        total=published,
        status=lambda: f"{consumed}/{published} acked",
    ) as phase:
        started = time.perf_counter()
        tag = await queue.consume(on_message)
        while not done.is_set():
            phase.done = consumed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.25)
        elapsed = time.perf_counter() - started
        phase.done = consumed
        await queue.cancel(tag)
    out["consume_ack"] = {
        "prefetch": config.prefetch,
        "operations": consumed,
        "rate": rnd(consumed / elapsed),
        "cpu_cores": {k: round(v, 2) for k, v in cpu.sample().items()},
    }
    await queue.delete(if_unused=False, if_empty=False)
    await exchange.delete()
    await channel.close()
    return out


async def run_raw(api: RabbitApi, config: FloorConfig, ui: Ui) -> dict[str, Any]:
    async with sandbox(("floor",), api) as box:
        postgres = await pg_floor(box.dsn("floor"), config, ui)
        rabbit = await amqp_floor(box.amqp_url, config, ui)
        transaction = await consumer_tx(box.dsn("floor"), config, ui)
    return {
        "postgres": postgres,
        "rabbitmq": rabbit,
        "consumer_tx": transaction,
        "config": config.__dict__,
    }


# ---- the client side of one consumer transaction --------------------------------

_RAW_INBOX = (
    "INSERT INTO inbox (consumer, event_id, event_type, correlation_id) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)
_RAW_OUTBOX = (
    "INSERT INTO outbox (event_id, routing_key, correlation_id, body, headers, created_at)"
    " VALUES ($1, $2, $3, $4, $5::jsonb, $6)"
)


async def consumer_tx(dsn: str, config: FloorConfig, ui: Ui) -> dict[str, Any]:
    """What the Python side costs for the transaction every consumed event runs:
    inbox claim + one outbox insert + commit, one connection, one at a time.

    - ``asyncpg``: prepared statements on one connection (the floor of the floor);
    - ``events``: the events library as the services run it (``service_kit``'s
      engine: SQLAlchemy AsyncSession and pool; ``events.testing.deliver``, i.e.
      ``handle_delivery``: inbox claim, a handler that emits one event, the
      outbox insert, commit).

    Reported: transactions/s and this process's CPU per transaction. The
    library is this tree's, whichever build the services come from.
    """
    from events import Envelope, Headers, Transaction, create_messaging_tables
    from events.testing import deliver
    from service_kit.database import create_engine, create_sessions
    from shop_contract import InventoryReserved, PaymentAuthorized, StockLine
    from sqlalchemy.ext.asyncio import create_async_engine

    from bench.machine import process_cpu_seconds

    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    setup = create_async_engine(url)
    async with setup.begin() as connection:
        await connection.run_sync(create_messaging_tables)
    await setup.dispose()

    def incoming() -> InventoryReserved:
        return InventoryReserved(
            order_id=uuid.uuid4(), items=(StockLine(sku="MOUSE-01", quantity=1),)
        )

    def answer(order_id: uuid.UUID) -> PaymentAuthorized:
        return PaymentAuthorized(
            order_id=order_id, amount="29.50", currency="EUR", authorization_id="auth-1"
        )

    results: dict[str, Any] = {}
    seconds = max(1.5, config.seconds / 2)

    connection = await asyncpg.connect(dsn)
    insert_inbox = await connection.prepare(_RAW_INBOX)
    insert_outbox = await connection.prepare(_RAW_OUTBOX)

    async def raw(_: int) -> None:
        event = incoming()
        delivered = Envelope.wrap(event)
        emitted = Envelope.wrap(answer(event.order_id), caused_by=delivered)
        headers = {
            Headers.SCHEMA_VERSION: emitted.version,
            Headers.CAUSATION_ID: str(delivered.id),
        }
        async with connection.transaction():
            await insert_inbox.fetch(
                "bench", delivered.id, delivered.type, delivered.correlation_id
            )
            await insert_outbox.fetch(
                emitted.id, emitted.type, emitted.correlation_id,
                emitted.model_dump_json(), json.dumps(headers), emitted.occurred_at,
            )  # fmt: skip

    variants: list[tuple[str, Callable[[int], Awaitable[None]], Any]] = [("asyncpg", raw, None)]
    engine = create_engine(url)
    sessions = create_sessions(engine)

    async def handler(event: InventoryReserved, tx: Transaction) -> None:
        tx.emit(answer(event.order_id))

    async def library(_: int) -> None:
        await deliver(sessions, handler, incoming(), consumer="bench")

    variants.append(("events", library, engine))

    # Interleaved in short slices (40 transactions of each variant in turn), so
    # other work on a shared machine weighs on every variant alike.
    for _ in range(100):  # warm: pools filled, statements compiled and prepared
        for _name, op, _engine in variants:
            await op(0)
    totals = {name: [0, 0.0, 0.0] for name, _op, _engine in variants}  # ops, wall, cpu
    latencies: dict[str, list[float]] = {name: [] for name, _op, _engine in variants}
    done = 0

    def status() -> str:
        return f"{done} tx"

    async with ui.phase(
        "floor: consumer tx, 2 ways", seconds=seconds * len(variants), status=status
    ):
        deadline = time.perf_counter() + seconds * len(variants)
        while time.perf_counter() < deadline:
            for name, op, _engine in variants:
                cpu_before = process_cpu_seconds(os.getpid()) or 0.0
                started = time.perf_counter()
                for _ in range(40):
                    t0 = time.perf_counter()
                    await op(0)
                    latencies[name].append(time.perf_counter() - t0)
                totals[name][0] += 40
                totals[name][1] += time.perf_counter() - started
                totals[name][2] += (process_cpu_seconds(os.getpid()) or 0.0) - cpu_before
                done += 40
    for name, (ops, wall, cpu) in totals.items():
        results[name] = {
            "rate": rnd(ops / wall),
            "latency_ms": summarize(latencies[name]),
            "client_cpu_ms_per_tx": round(cpu * 1000 / max(ops, 1), 3),
        }
    for _name, _op, engine in variants:
        if engine is not None:
            await engine.dispose()
    await connection.close()
    return results


# ---- census: the work ONE order costs, measured on the running shop ---------------

STATS_FLUSH_WAIT = 11.0  # PG 15 backends flush their counters within ~10 s of idling;
# the management API refreshes every 5 s.


async def _snapshot(stack: Any, api: RabbitApi) -> tuple[float, dict[str, Any], dict[str, int]]:
    from bench.infra import database_stats

    return (
        time.monotonic(),
        await database_stats(stack.database_names),
        await api.vhost_message_stats(stack.box.vhost),
    )


def _delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


async def census(
    stack: Any,
    api: RabbitApi,
    ui: Ui,
    *,
    orders: int,
    rate: float,
    idle_seconds: float = 10.0,
    settle_first: bool = True,
) -> dict[str, Any]:
    """Commits per database, and broker publishes/deliveries/acks, per order.

    gross = counters over [before the orders, all final + stats flushed];
    idle = the same counters' rate over a quiet window right after (relay polls,
    housekeeping); net = gross - idle rate x window.
    """
    from bench.load import open_loop

    await stack.wait_quiet()
    if settle_first:
        # Counters of what ran before (warm-up) must be flushed before the first
        # snapshot; without this wait (quick) a few of them count as this window's.
        await asyncio.sleep(STATS_FLUSH_WAIT)
    t0, db0, mq0 = await _snapshot(stack, api)
    completed = 0

    async with ui.phase(
        "census: orders", total=orders, status=lambda: f"{completed}/{orders} final"
    ) as phase:
        posted = await open_loop(stack, rate=rate, count=orders)
        ids = [p.order_id for p in posted if p.ok]

        async def wait(order_id: str) -> None:
            nonlocal completed
            with contextlib.suppress(TimeoutError):
                await stack.sink.wait_complete(order_id, 120)
                completed += 1
                phase.advance()

        await asyncio.gather(*(wait(i) for i in ids))
    async with ui.phase("census: settle + stats flush", seconds=STATS_FLUSH_WAIT + 2):
        await stack.wait_quiet()
        await asyncio.sleep(STATS_FLUSH_WAIT)
    t1, db1, mq1 = await _snapshot(stack, api)
    async with ui.phase("census: idle baseline", seconds=idle_seconds):
        await asyncio.sleep(idle_seconds)
    t2, db2, _mq2 = await _snapshot(stack, api)

    n = max(completed, 1)
    window = t1 - t0
    idle = t2 - t1
    by_service: dict[str, Any] = {}
    totals = {"commits": 0.0, "rows_written": 0.0, "idle_commits_per_s": 0.0}
    for service, database in stack.box.databases.items():
        gross = _delta(db1[database], db0[database])
        quiet = _delta(db2[database], db1[database])
        idle_rate = quiet["xact_commit"] / idle
        net_commits = gross["xact_commit"] - idle_rate * window
        rows = gross["tup_inserted"] + gross["tup_updated"] + gross["tup_deleted"]
        by_service[service] = {
            "commits_per_order": round(net_commits / n, 2),
            "gross_commits_per_order": round(gross["xact_commit"] / n, 2),
            "rollbacks_per_order": round(gross["xact_rollback"] / n, 2),
            "rows_written_per_order": round(rows / n, 2),
            "rows_inserted_per_order": round(gross["tup_inserted"] / n, 2),
            "rows_updated_per_order": round(gross["tup_updated"] / n, 2),
            "idle_commits_per_s": round(idle_rate, 2),
        }
        totals["commits"] += net_commits / n
        totals["rows_written"] += rows / n
        totals["idle_commits_per_s"] += idle_rate
    mq = _delta(mq1, mq0)
    if any(v < 0 for v in mq.values()):
        # The management database starts again from zero when the broker does.
        raise RuntimeError(
            "the broker's message statistics went backwards during the census"
            " (RabbitMQ restarted by other work on this machine?): run it again"
        )
    broker = {
        "publishes_per_order": round(mq.get("publish", 0) / n, 2),
        "confirms_per_order": round(mq.get("confirm", 0) / n, 2),
        "deliveries_per_order": round(mq.get("deliver_get", 0) / n, 2),
        "acks_per_order": round(mq.get("ack", 0) / n, 2),
        "redeliveries_per_order": round(mq.get("redeliver", 0) / n, 2),
        "unroutable_per_order": round(
            (mq.get("return_unroutable", 0) + mq.get("drop_unroutable", 0)) / n, 2
        ),
        "raw": mq,
    }
    return {
        "orders": orders,
        "post_errors": sum(1 for p in posted if not p.ok),
        "completed": completed,
        "offered_rate": rate,
        "window_s": round(window, 1),
        "by_service": by_service,
        "commits_per_order": round(totals["commits"], 2),
        "rows_written_per_order": round(totals["rows_written"], 2),
        "idle_commits_per_s": round(totals["idle_commits_per_s"], 2),
        "broker": broker,
        "emails_per_order": round(stack.sink.total / max(len(stack.sink.orders), 1), 2),
    }


def ceiling(raw: dict[str, Any], work: dict[str, Any]) -> dict[str, Any]:
    """Orders/s the bare servers would allow for that much work per order.

    Per resource: floor rate / work per order (each alone, the optimistic bound).
    Combined: the three share the same two cores, so their times add up:
    1 / (commits/commit_rate + publishes/publish_rate + deliveries/consume_rate).
    """
    pg = max((v["rate"] for v in raw["postgres"].values()), default=0.0)
    quorum = raw["rabbitmq"]["quorum"]
    publish = max(v["rate"] for k, v in quorum.items() if k.startswith("publish"))
    consume = quorum["consume_ack"]["rate"]
    commits = work["commits_per_order"]
    publishes = work["broker"]["publishes_per_order"]
    deliveries = work["broker"]["deliveries_per_order"]
    bounds = {
        "postgres": round(pg / commits, 1) if commits else None,
        "publish": round(publish / publishes, 1) if publishes else None,
        "consume": round(consume / deliveries, 1) if deliveries else None,
    }
    seconds = (
        (commits / pg if pg else 0)
        + (publishes / publish if publish else 0)
        + (deliveries / consume if consume else 0)
    )
    return {
        "inputs": {
            "commit_rate": pg,
            "publish_rate": publish,
            "consume_rate": consume,
            "commits_per_order": commits,
            "publishes_per_order": publishes,
            "deliveries_per_order": deliveries,
        },
        "per_resource": bounds,
        "min_single_resource": min((b for b in bounds.values() if b), default=None),
        "combined": round(1 / seconds, 1) if seconds else None,
    }
