"""The order service's use cases. Each runs in a unit of work its caller opened:
a route per request (placing, reading), the consumer per delivery (the join)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID, uuid4

import structlog
from events import Envelope, PermanentError

from order_service.adapters.metrics import DEADLINES_EXCEEDED, order_entered
from order_service.adapters.repository import IdempotencyRecord
from order_service.domain import idempotency
from order_service.domain.catalogue import Product, RequestedLine, UnorderableLines, price_lines
from order_service.domain.order import Answer, Order, StatusChange
from order_service.domain.outcomes import Outcome
from order_service.domain.status import OrderStatus
from order_service.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    customer_id: str
    email: str
    lines: Sequence[RequestedLine]
    payment_token: str
    request_hash: str
    idempotency_key: str | None = None
    # The request's trace, which ``order.created`` continues (orders placed
    # together are written by one task, outside each request's own context).
    trace: Mapping[str, str] | None = None


class IdempotencyConflict(Exception):
    """The Idempotency-Key was first used with a different request."""


class Seals(Protocol):
    def seal(self, secret: str) -> str: ...


class Placing(Protocol):
    """What placing an order needs besides its unit of work."""

    @property
    def payment_tokens(self) -> Seals: ...
    @property
    def deadline(self) -> timedelta: ...
    @property
    def idempotency_ttl(self) -> timedelta: ...
    def clock(self) -> datetime: ...


async def place_order(uow: UnitOfWork, command: PlaceOrder, deps: Placing) -> Order:
    """``place_orders`` of one: the order, or raises what refused it."""
    (placed,) = await place_orders(uow, [command], deps)
    if isinstance(placed, Exception):
        raise placed
    return placed


async def place_orders(
    uow: UnitOfWork, commands: Sequence[PlaceOrder], deps: Placing
) -> list[Order | Exception]:
    """Place each order with its ``order.created`` event, all in ``uow``'s
    transaction; for each command, its order, the one its idempotency key already
    placed, or what refused it: ``UnorderableLines`` (unknown or repeated SKUs) or
    ``IdempotencyConflict``. One command refused leaves the others placed.

    Lines are priced before any key is claimed, so a refused request leaves its
    key unused; keys are claimed before anything is written, so a concurrent twin
    waits on the claim. A key twice in ``commands`` is the second a twin of the first.
    """
    now = deps.clock()
    prices = await uow.catalogue.prices_of(
        line.sku for command in commands for line in command.lines
    )
    results: list[Order | Exception | None] = [None] * len(commands)
    new: dict[int, Order] = {}
    claimants: dict[str, int] = {}  # key → the command that claims it
    twins: dict[int, str] = {}  # command → its key, claimed by an earlier one here
    for i, command in enumerate(commands):
        try:
            lines = price_lines(command.lines, prices)
        except UnorderableLines as refused:
            results[i] = refused
            continue
        key = command.idempotency_key
        if key is not None and key in claimants:
            twins[i] = key
            continue
        if key is not None:
            claimants[key] = i
        new[i] = Order.place(
            id=uuid4(),
            customer_id=command.customer_id,
            email=command.email,
            lines=lines,
            at=now,
            deadline=deps.deadline,
        )
    claimed = await uow.idempotency_keys.claim(
        [
            IdempotencyRecord(key, commands[i].request_hash, new[i].id)
            for key, i in claimants.items()
        ],
        expired_before=now - deps.idempotency_ttl,
    )
    for key, i in claimants.items():
        if key not in claimed:
            # Used before, or by a twin request whose commit our claim waited for:
            # either way its order is committed and visible to the next statement.
            del new[i]
            results[i] = await _placed_earlier(uow, key, commands[i].request_hash)

    for i, order in new.items():
        _accept(uow, order, commands[i], deps)
        results[i] = order
    await uow.orders.add(list(new.values()))
    for i, key in twins.items():
        results[i] = await _placed_earlier(uow, key, commands[i].request_hash)
    return [_given(result) for result in results]


def _given(result: Order | Exception | None) -> Order | Exception:
    if result is None:  # pragma: no cover - every command is answered above
        raise RuntimeError("a command was left without an answer")
    return result


def _accept(uow: UnitOfWork, order: Order, command: PlaceOrder, deps: Placing) -> None:
    sealed = deps.payment_tokens.seal(command.payment_token)
    created = uow.emit(order.created(sealed_payment_token=sealed), trace=command.trace)
    order.entered(_entered(OrderStatus.PENDING, order.created_at, created))
    uow.after_commit(order_entered(OrderStatus.PENDING))
    with structlog.contextvars.bound_contextvars(correlation_id=str(order.id)):
        log.info("order.placed", total=str(order.total), lines=len(order.lines))


async def record_outcome(uow: UnitOfWork, order_id: UUID, outcome: Outcome) -> None:
    """The saga's join: one side's answer, in any order, any number of times.

    Runs for a delivery: the event that brought the answer is the history's cause.
    """
    cause = uow.caused_by
    if cause is None:
        raise ValueError("an outcome is recorded while handling the event that brought it")
    order = await uow.orders.get(order_id, lock=True)
    if order is None:
        # Orders are published only after they commit, so this never will exist.
        raise PermanentError(f"no order {order_id}")
    recorded = order.record(outcome, at=datetime.now(UTC), event_type=cause.type, event_id=cause.id)
    if recorded.answer is not Answer.NEW:
        level = log.warning if recorded.answer is Answer.CONFLICTING else log.info
        level(f"saga.outcome_{recorded.answer}", side=outcome.side.value)
        return
    await uow.orders.save_progress(order, recorded.change)
    if recorded.change is None:
        log.info("saga.outcome_recorded", side=outcome.side.value, status=order.status.value)
        return
    uow.emit(order.outcome())
    uow.after_commit(order_entered(order.status))
    log.info(f"order.{order.status.lower()}", reason=order.reason, total=str(order.total))


async def expire_overdue_orders(uow: UnitOfWork, *, now: datetime, limit: int) -> int:
    """Cancel up to ``limit`` PENDING orders past their deadline; how many.

    An ordinary ``order.cancelled`` ("deadline exceeded"), so every compensation
    runs: stock released, an authorization voided, the customer told. Orders
    another worker is sweeping (or joining) right now are skipped, not waited for.
    """
    expired = 0
    for order in await uow.orders.overdue(now, limit=limit):
        if not order.expire(at=now):
            continue
        cancelled = uow.emit(order.outcome())
        change = _entered(order.status, now, cancelled)
        order.entered(change)
        await uow.orders.save_progress(order, change)
        uow.after_commit(order_entered(order.status))
        uow.after_commit(DEADLINES_EXCEEDED.inc)
        with structlog.contextvars.bound_contextvars(correlation_id=str(order.id)):
            log.info("order.cancelled", reason=order.reason, deadline_at=str(order.deadline_at))
        expired += 1
    return expired


async def oldest_pending_age(uow: UnitOfWork, *, now: datetime) -> timedelta:
    since = await uow.orders.oldest_pending_since()
    return max(now - since, timedelta(0)) if since is not None else timedelta(0)


async def forget_idempotency_keys(uow: UnitOfWork, *, now: datetime, ttl: timedelta) -> int:
    """Delete the keys past their time to live (lookups already treat them as new)."""
    return await uow.idempotency_keys.forget(used_before=now - ttl)


async def order_of(uow: UnitOfWork, order_id: UUID) -> Order | None:
    return await uow.orders.get(order_id)


async def catalogue(uow: UnitOfWork) -> list[Product]:
    return await uow.catalogue.products()


def _entered(status: OrderStatus, at: datetime, cause: Envelope) -> StatusChange:
    return StatusChange(status, at, cause.type, cause.id)


async def _placed_earlier(uow: UnitOfWork, key: str, request_hash: str) -> Order | Exception:
    """The order ``key`` placed, or the conflict if it was for another request."""
    record = await uow.idempotency_keys.find(key)
    if record is None:  # pragma: no cover - a claimed key is never deleted
        raise RuntimeError(f"idempotency key {key!r} conflicted but cannot be found")
    with structlog.contextvars.bound_contextvars(correlation_id=str(record.order_id)):
        if not idempotency.same_request(record.request_hash, request_hash):
            log.info("order.idempotency_conflict")
            return IdempotencyConflict(
                "this Idempotency-Key was already used with a different request body"
            )
        order = await uow.orders.get(record.order_id)
        if order is None:  # pragma: no cover - the key's foreign key guarantees it
            raise RuntimeError(f"idempotency key {key!r} names a missing order")
        log.info("order.replayed")
        return order
