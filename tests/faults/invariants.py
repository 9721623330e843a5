"""What must be true once the system has drained, whatever fault it went through.

The checker reads the four service databases directly (the test created them),
the broker's queue depths (passive declares: exact, unlike management stats) and
the SMTP sink, and compares everything with what the load asked for:

- every accepted order exists once and is final; where the inputs decide the
  outcome (declined card, empty SKU, ample stock), it is the decided one;
- order: history PENDING → final exactly once; one order.created and one
  order.confirmed *or* order.cancelled in its outbox;
- inventory: a confirmed order's lines are COMMITTED exactly; a cancelled order
  holds nothing (REJECTED, RELEASED or the CANCELLED tombstone); per SKU
  ``reserved == 0`` and ``available == initial - committed``; each inventory
  event emitted at most once, and consistent with the reservation;
- payment: a confirmed order has exactly one AUTHORIZED payment for its total;
  a cancelled one is VOIDED, DECLINED or never charged (tombstone); each payment
  event emitted at most once;
- email: exactly one ``received`` and one ``confirmed``/``cancelled`` (matching
  the status) per order, in the email database, in the email outbox
  (``email.sent``) and in the SMTP sink;
- every outbox drained, every service and retry queue empty, every DLQ holding
  exactly the dead letters the scenario expects (none, unless it poisons).

SMTP duplicates: the email service claims ``(order, kind)`` in its transaction,
sends, then commits. If the commit fails after the SMTP server accepted (the
email database connection terminated, the process killed in that instant), the
retry sends again, with the same deterministic ``Message-ID``. That window is the
documented, unavoidable one (a transaction cannot span an SMTP server), so a
scenario that can hit it (one that breaks the email service's database
connections or kills the email service) passes ``smtp_duplicates_allowed=True``:
duplicates are then counted and reported, and must share the ``Message-ID``.
Every other scenario asserts exactly one message per order and kind.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aio_pika
import asyncpg
from events import ConsumerQueue

from tests.faults.broker import dead_letter_queues, queue_depths, retry_queues, shop_queues
from tests.faults.load import PlannedOrder
from tests.faults.measured import measured
from tests.support.shop import Shop
from tests.support.system import System

DEFAULT_RETRY_DELAYS = ConsumerQueue(service="any", bindings=frozenset()).retry_delays

FINAL = ("CONFIRMED", "CANCELLED")
UNREADABLE = (
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    OSError,
    TimeoutError,
    aio_pika.exceptions.AMQPConnectionError,
)
DEADLINE_EXCEEDED = "deadline exceeded"
HOLDS_NOTHING = ("REJECTED", "RELEASED", "CANCELLED")
NEVER_KEPT = ("VOIDED", "DECLINED", "CANCELLED")
SERVICES = ("order", "inventory", "payment", "email")
# Longer than the longest consumer retry delay (30 s): no change for this long is a
# stuck system, not a slow one.
STALL_SECONDS = max(DEFAULT_RETRY_DELAYS) + 5


@dataclass
class Expectations:
    orders: dict[str, PlannedOrder]  # accepted order id → what was asked for
    stock: dict[str, int]  # sellable quantity per SKU set before the load
    dead_letters: dict[str, int] = field(default_factory=dict)  # DLQ name → messages
    smtp_duplicates_allowed: bool = False
    # The deadline may cancel any order, whatever its inputs said (a fault held it up).
    deadline_may_cancel: bool = False

    def dead_letters_in(self, queue: str) -> int:
        return self.dead_letters.get(queue, 0)


@dataclass
class Snapshot:
    orders: dict[str, dict[str, Any]]
    order_lines: dict[str, list[tuple[str, int]]]
    history: dict[str, list[str]]
    stock: dict[str, tuple[int, int]]
    reservations: dict[str, str]
    reservation_lines: dict[str, list[tuple[str, int]]]
    payments: dict[str, dict[str, Any]]
    emails: dict[str, list[str]]
    # per service: (order id, routing key[, email kind]) → rows; and unsent rows
    outbox: dict[str, Counter[tuple[str, ...]]]
    unsent: dict[str, Counter[str]]  # per service: routing key → rows not yet sent
    unsent_errors: dict[str, dict[str, str]]  # per service: routing key → a last_error
    smtp: dict[tuple[str, str], list[str]]  # (order id, kind) → Message-IDs
    smtp_recipients: dict[tuple[str, str], set[str]]
    queues: dict[str, int]


_QUERIES: dict[str, dict[str, str]] = {
    "order": {
        "orders": "SELECT id, status, reason, inventory_outcome, payment_outcome, total, email"
        " FROM orders",
        "lines": "SELECT order_id, sku, quantity FROM order_lines",
        "history": "SELECT order_id, status FROM order_history ORDER BY seq",
    },
    "inventory": {
        "stock": "SELECT sku, available, reserved FROM stock",
        "reservations": "SELECT order_id, status FROM reservations",
        "lines": "SELECT order_id, sku, quantity FROM reservation_lines",
    },
    "payment": {"payments": "SELECT order_id, status, amount FROM payments"},
    "email": {"emails": "SELECT order_id, kind FROM emails WHERE status = 'sent'"},
}
_OUTBOX = "SELECT correlation_id, routing_key, body, sent_at, last_error FROM outbox"


async def _read(dsn: str, queries: dict[str, str]) -> dict[str, list[asyncpg.Record]]:
    """Run ``queries`` in one read-only snapshot of one database, on a short-lived
    connection (the server is shared: hold as few connections as possible)."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return {name: await conn.fetch(sql) for name, sql in queries.items()}
    finally:
        await conn.close()


async def snapshot(system: System, databases: dict[str, str], amqp_url: str) -> Snapshot:
    rows = {
        service: await _read(databases[service], {**_QUERIES[service], "outbox": _OUTBOX})
        for service in SERVICES
    }
    orders = {str(r["id"]): dict(r) for r in rows["order"]["orders"]}
    order_lines: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for r in rows["order"]["lines"]:
        order_lines[str(r["order_id"])].append((r["sku"], r["quantity"]))
    history: dict[str, list[str]] = defaultdict(list)
    for r in rows["order"]["history"]:
        history[str(r["order_id"])].append(r["status"])

    stock = {r["sku"]: (r["available"], r["reserved"]) for r in rows["inventory"]["stock"]}
    reservations = {str(r["order_id"]): r["status"] for r in rows["inventory"]["reservations"]}
    reservation_lines: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for r in rows["inventory"]["lines"]:
        reservation_lines[str(r["order_id"])].append((r["sku"], r["quantity"]))

    payments = {str(r["order_id"]): dict(r) for r in rows["payment"]["payments"]}
    emails: dict[str, list[str]] = defaultdict(list)
    for r in rows["email"]["emails"]:
        emails[str(r["order_id"])].append(r["kind"])

    outbox: dict[str, Counter[tuple[str, ...]]] = {}
    unsent: dict[str, Counter[str]] = {}
    unsent_errors: dict[str, dict[str, str]] = defaultdict(dict)
    for service in SERVICES:
        counts: Counter[tuple[str, ...]] = Counter()
        pending: Counter[str] = Counter()
        for r in rows[service]["outbox"]:
            key: tuple[str, ...] = (r["correlation_id"], r["routing_key"])
            if r["routing_key"] == "email.sent":
                key = (*key, json.loads(r["body"])["data"]["kind"])
            counts[key] += 1
            if r["sent_at"] is None:
                pending[r["routing_key"]] += 1
                if r["last_error"]:
                    unsent_errors[service][r["routing_key"]] = r["last_error"]
        outbox[service] = counts
        unsent[service] = pending

    smtp: dict[tuple[str, str], list[str]] = defaultdict(list)
    recipients: dict[tuple[str, str], set[str]] = defaultdict(set)
    for message in list(system.smtp.messages):
        key2 = (str(message["X-Order-Id"]), str(message["X-Email-Kind"]))
        smtp[key2].append(str(message["Message-ID"]))
        recipients[key2].add(str(message["To"]))

    return Snapshot(
        orders=orders,
        order_lines=dict(order_lines),
        history=dict(history),
        stock=stock,
        reservations=reservations,
        reservation_lines=dict(reservation_lines),
        payments=payments,
        emails=dict(emails),
        outbox=outbox,
        unsent=unsent,
        unsent_errors=dict(unsent_errors),
        smtp=dict(smtp),
        smtp_recipients=dict(recipients),
        queues=await queue_depths(amqp_url, shop_queues()),
    )


def violations(s: Snapshot, expect: Expectations) -> list[str]:
    """Every broken invariant, one line each (empty: all hold)."""
    bad: list[str] = []
    ids = set(expect.orders)

    missing = ids - set(s.orders)
    extra = set(s.orders) - ids
    if missing:
        bad.append(f"{len(missing)} accepted orders absent from the order database")
    if extra:
        bad.append(f"{len(extra)} orders in the database that no request was answered with")

    committed: Counter[str] = Counter()
    for order_id, planned in expect.orders.items():
        order = s.orders.get(order_id)
        if order is None:
            continue
        bad.extend(
            f"order {order_id}: {v}"
            for v in _order(order_id, order, planned, s, expect.deadline_may_cancel)
        )
        if s.reservations.get(order_id) == "COMMITTED":
            for sku, qty in s.reservation_lines.get(order_id, []):
                committed[sku] += qty

    for sku, initial in expect.stock.items():
        available, reserved = s.stock.get(sku, (None, None))
        if reserved != 0:
            bad.append(f"stock {sku}: {reserved} still reserved")
        if available != initial - committed[sku]:
            bad.append(
                f"stock {sku}: available {available} != {initial} set - {committed[sku]} committed"
            )

    for service, pending in s.unsent.items():
        if pending:
            errors = s.unsent_errors.get(service, {})
            why = "".join(f"\n      {key}: {error[:200]}" for key, error in errors.items())
            bad.append(f"{service} outbox: rows not yet sent {dict(pending)}{why}")
    for queue, depth in s.queues.items():
        want = expect.dead_letters_in(queue)
        if depth != want:
            bad.append(f"queue {queue}: {depth} messages, expected {want}")

    for (order_id, kind), message_ids in s.smtp.items():
        if order_id not in ids:
            bad.append(f"smtp: {len(message_ids)} '{kind}' emails for unknown order {order_id}")
    return bad


def _order(
    order_id: str,
    order: dict[str, Any],
    planned: PlannedOrder,
    s: Snapshot,
    deadline_may_cancel: bool = False,
) -> list[str]:
    bad: list[str] = []
    status = order["status"]
    if status not in FINAL:
        return [f"still {status}"]
    # Cancelled at its deadline: both answers may have come, late, and changed nothing.
    expired = status == "CANCELLED" and order["reason"] == DEADLINE_EXCEEDED
    if expired and not deadline_may_cancel:
        bad.append("cancelled at its deadline, which nothing in this scenario should reach")
    if planned.expected_status and status != planned.expected_status and not expired:
        bad.append(
            f"{status}, expected {planned.expected_status} ({planned.token} {planned.items})"
        )
    positive = order["inventory_outcome"] == "RESERVED" and order["payment_outcome"] == "AUTHORIZED"
    if (status == "CONFIRMED") != positive and not expired:
        bad.append(
            f"{status} with inventory {order['inventory_outcome']},"
            f" payment {order['payment_outcome']}"
        )
    if sorted(s.order_lines.get(order_id, [])) != sorted(planned.items):
        bad.append(f"lines {s.order_lines.get(order_id)} != asked {planned.items}")
    if s.history.get(order_id) != ["PENDING", status]:
        bad.append(f"history {s.history.get(order_id)}")
    out = s.outbox["order"]
    emitted = (
        out[(order_id, "order.created")],
        out[(order_id, "order.confirmed")],
        out[(order_id, "order.cancelled")],
    )
    if emitted != (1, int(status == "CONFIRMED"), int(status == "CANCELLED")):
        bad.append(f"order outbox created/confirmed/cancelled = {emitted}")

    bad.extend(_inventory(order_id, order, s))
    bad.extend(_payment(order_id, order, planned, s))
    bad.extend(_emails(order_id, order, s))
    return bad


def _inventory(order_id: str, order: dict[str, Any], s: Snapshot) -> list[str]:
    bad: list[str] = []
    status = order["status"]
    reservation = s.reservations.get(order_id)
    if status == "CONFIRMED":
        if reservation != "COMMITTED":
            bad.append(f"confirmed but reservation {reservation}")
        elif sorted(s.reservation_lines.get(order_id, [])) != sorted(s.order_lines[order_id]):
            bad.append(f"committed {s.reservation_lines.get(order_id)} != order lines")
    elif reservation not in HOLDS_NOTHING:
        bad.append(f"cancelled but reservation {reservation}")
    answered = {
        "RESERVED": ("COMMITTED", "RELEASED"),
        "REJECTED": ("REJECTED",),
        None: ("CANCELLED",),
    }.get(order["inventory_outcome"], ())
    if reservation not in answered:
        bad.append(f"order heard inventory {order['inventory_outcome']}, reservation {reservation}")
    out = s.outbox["inventory"]
    emitted = (
        out[(order_id, "inventory.reserved")],
        out[(order_id, "inventory.rejected")],
        out[(order_id, "inventory.released")],
    )
    want = (
        int(reservation in ("COMMITTED", "RELEASED")),
        int(reservation == "REJECTED"),
        int(reservation == "RELEASED"),
    )
    if emitted != want:
        bad.append(f"inventory outbox reserved/rejected/released = {emitted}, want {want}")
    return bad


def _payment(order_id: str, order: dict[str, Any], planned: PlannedOrder, s: Snapshot) -> list[str]:
    bad: list[str] = []
    status = order["status"]
    payment = s.payments.get(order_id)
    state = payment["status"] if payment else None
    if status == "CONFIRMED":
        if state != "AUTHORIZED":
            bad.append(f"confirmed but payment {state}")
        elif Decimal(payment["amount"]) != Decimal(order["total"]):  # type: ignore[index]
            bad.append(f"authorized {payment['amount']} != total {order['total']}")  # type: ignore[index]
    elif state not in NEVER_KEPT:
        bad.append(f"cancelled but payment {state}")
    if planned.token == "tok_chargeDeclined" and state not in ("DECLINED", "CANCELLED"):
        bad.append(f"declined card but payment {state}")
    answered = {
        "AUTHORIZED": ("AUTHORIZED", "VOIDED"),
        "DECLINED": ("DECLINED",),
        None: ("CANCELLED",),
    }.get(order["payment_outcome"], ())
    if state not in answered:
        bad.append(f"order heard payment {order['payment_outcome']}, payment {state}")
    out = s.outbox["payment"]
    emitted = (
        out[(order_id, "payment.authorized")],
        out[(order_id, "payment.declined")],
        out[(order_id, "payment.voided")],
    )
    want = (
        int(state in ("AUTHORIZED", "VOIDED")),
        int(state == "DECLINED"),
        int(state == "VOIDED"),
    )
    if emitted != want:
        bad.append(f"payment outbox authorized/declined/voided = {emitted}, want {want}")
    return bad


def _emails(order_id: str, order: dict[str, Any], s: Snapshot) -> list[str]:
    bad: list[str] = []
    final_kind = "confirmed" if order["status"] == "CONFIRMED" else "cancelled"
    kinds = sorted(s.emails.get(order_id, []))
    if kinds != sorted(["received", final_kind]):
        bad.append(f"emails in database {kinds}, want received + {final_kind}")
    out = s.outbox["email"]
    for kind in ("received", "confirmed", "cancelled"):
        want = int(kind in ("received", final_kind))
        if out[(order_id, "email.sent", kind)] != want:
            bad.append(f"email outbox: {out[(order_id, 'email.sent', kind)]} email.sent {kind}")
        sent = s.smtp.get((order_id, kind), [])
        if len(sent) != want:
            bad.append(f"smtp: {len(sent)} '{kind}' emails, want {want}")
        if sent and s.smtp_recipients[(order_id, kind)] != {order["email"]}:
            bad.append(f"smtp: '{kind}' went to {s.smtp_recipients[(order_id, kind)]}")
    return bad


def smtp_duplicates(s: Snapshot) -> int:
    return sum(len(ids) - 1 for ids in s.smtp.values() if len(ids) > 1)


def _tolerate_smtp_duplicates(s: Snapshot) -> tuple[Snapshot, list[str]]:
    """Fold same-Message-ID duplicates into one; a differing id is still a violation."""
    bad = [
        f"smtp: {key} sent {len(ids)} times with different Message-IDs {set(ids)}"
        for key, ids in s.smtp.items()
        if len(set(ids)) > 1
    ]
    folded = {key: ids[:1] for key, ids in s.smtp.items()}
    return Snapshot(**{**s.__dict__, "smtp": folded}), bad


@dataclass
class Report:
    scenario: str
    orders: int
    statuses: Counter[str]
    drain_seconds: float
    duplicates_absorbed: int
    smtp_duplicates: int
    dead_letters: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        statuses = " ".join(f"{k}={v}" for k, v in sorted(self.statuses.items()))
        dead = sum(self.dead_letters.values())
        extra = "".join(f" {k}={v}" for k, v in self.extra.items())
        return (
            f"{self.scenario}: orders={self.orders} {statuses}"
            f" drain={self.drain_seconds:.1f}s duplicates_absorbed={self.duplicates_absorbed}"
            f" smtp_duplicates={self.smtp_duplicates} dead_letters={dead}{extra}"
        )


async def duplicates_absorbed(shop: Shop) -> int:
    """Deliveries the inboxes recognised as already handled, since each process started."""
    total = 0.0
    for service in SERVICES:
        try:
            total += await shop.metric(service, "events_consumed_total", outcome="duplicate")
        except Exception:  # a service that is down has no counters to give
            continue
    return int(total)


async def assert_consistent(
    scenario: str,
    system: System,
    databases: dict[str, str],
    amqp_url: str,
    expect: Expectations,
    *,
    since: float,
    timeout: float = 90.0,
    settle: float = 1.5,
    stall: float = STALL_SECONDS,
    extra: dict[str, Any] | None = None,
) -> Report:
    """Wait until every invariant holds, check again after ``settle`` seconds (late
    duplicates, redeliveries), print one line of what was measured, return it.

    Gives up after ``timeout``, or sooner when nothing has changed for ``stall``
    seconds (longer than the longest retry delay: a stuck system, not a slow one).
    """
    deadline = time.monotonic() + timeout
    problems: list[str] = []
    last_change, last_problems = time.monotonic(), frozenset[str]()
    delayed = retry_queues()
    while True:
        retrying = False
        try:
            snap = await snapshot(system, databases, amqp_url)
            problems = _problems(snap, expect)
            # A message in a retry queue comes back when its TTL runs out: the
            # system is waiting, not stuck (``timeout`` still bounds the wait).
            retrying = any(snap.queues.get(q, 0) for q in delayed)
            if not problems:
                drained = time.monotonic()
                await asyncio.sleep(settle)
                snap = await snapshot(system, databases, amqp_url)
                problems = _problems(snap, expect)
                if not problems:
                    break
        except UNREADABLE as exc:
            # A busy shared server (too many clients) or a broker coming back:
            # not a verdict on the system, just look again.
            problems = [f"could not read the state: {exc!r}"]
        now = time.monotonic()
        if frozenset(problems) != last_problems or retrying:
            last_change, last_problems = now, frozenset(problems)
        stalled = now - last_change > stall
        if now > deadline or stalled:
            summary = "\n  ".join(problems[:40])
            more = f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else ""
            verdict = f"no progress for {stall:.0f}s" if stalled else f"not drained in {timeout}s"
            raise AssertionError(f"{scenario}: invariants broken, {verdict}:\n  {summary}{more}")
        await asyncio.sleep(0.5)

    report = Report(
        scenario=scenario,
        orders=len(snap.orders),
        statuses=Counter(o["status"] for o in snap.orders.values()),
        drain_seconds=drained - since,
        duplicates_absorbed=await duplicates_absorbed(Shop(system)),
        smtp_duplicates=smtp_duplicates(snap),
        dead_letters={q: snap.queues.get(q, 0) for q in dead_letter_queues()},
        extra=extra or {},
    )
    measured(report.line())
    return report


def _problems(snap: Snapshot, expect: Expectations) -> list[str]:
    extra: list[str] = []
    if expect.smtp_duplicates_allowed:
        snap, extra = _tolerate_smtp_duplicates(snap)
    return extra + violations(snap, expect)
