"""What the inventory does when an order is created, confirmed or cancelled.

Each handler runs inside the consumer's transaction (the inbox claim, our writes
and the outbox rows commit together) and may see its events twice or out of order:
the reservation's status, never the arrival order, decides what happens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import structlog
from events import (
    Event,
    Handler,
    InventoryRejected,
    InventoryReleased,
    InventoryReserved,
    MessageContext,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    PermanentError,
    StockLine,
)
from service_kit import Runtime

from inventory_service.adapters.repository import ReservationRepository, StockRepository
from inventory_service.domain import (
    Line,
    Rejected,
    Reservation,
    ReservationConflict,
    ReservationStatus,
    Reserved,
    commit_stock,
    demand,
    release_stock,
    reserve_stock,
)
from inventory_service.metrics import RESERVATIONS

log = structlog.get_logger(__name__)


async def reserve_for_order(event: OrderCreated, ctx: MessageContext) -> None:
    reservations = ReservationRepository(ctx.session)
    existing = await reservations.get(event.order_id)
    if existing is not None:
        skip_reason = (
            # order.cancelled came first and left a tombstone: reserve nothing.
            "order cancelled before it was created"
            if existing.status is ReservationStatus.CANCELLED
            else "order already handled"
        )
        log.info("reservation.skipped", reason=skip_reason, status=existing.status)
        return

    lines = tuple(Line(item.sku, item.quantity) for item in event.items)
    stock = StockRepository(ctx.session)
    decision = reserve_stock(lines, await stock.lock(line.sku for line in lines))
    status = (
        ReservationStatus.RESERVED if isinstance(decision, Reserved) else ReservationStatus.REJECTED
    )
    if not await reservations.add(Reservation(event.order_id, status, lines)):
        # A concurrent order.cancelled (or duplicate) committed its decision first.
        log.info("reservation.skipped", reason="order handled concurrently")
        return

    match decision:
        case Reserved(stock=levels):
            await stock.save(levels)
            await ctx.emit(InventoryReserved(order_id=event.order_id, items=_stock_lines(lines)))
            log.info("stock.reserved", items=_describe(lines))
        case Rejected(missing_skus=missing, reason=reason):
            await ctx.emit(
                InventoryRejected(order_id=event.order_id, missing_skus=missing, reason=reason)
            )
            log.info("stock.rejected", missing_skus=list(missing), reason=reason)
    RESERVATIONS.labels(status.lower()).inc()


async def release_for_order(event: OrderCancelled, ctx: MessageContext) -> None:
    reservations = ReservationRepository(ctx.session)
    if await reservations.add(Reservation.tombstone(event.order_id)):
        log.info("reservation.tombstoned", reason="cancelled before any reservation")
        RESERVATIONS.labels(ReservationStatus.CANCELLED.lower()).inc()
        return

    reservation = await _locked(reservations, event.order_id)
    released = _transition(reservation.release)
    if released.status is reservation.status:
        log.info("release.skipped", status=reservation.status)
        return
    stock = StockRepository(ctx.session)
    levels = await stock.lock(line.sku for line in reservation.lines)
    await stock.save(release_stock(reservation.lines, levels))
    await reservations.set_status(event.order_id, released.status)
    await ctx.emit(
        InventoryReleased(order_id=event.order_id, items=_stock_lines(reservation.lines))
    )
    log.info("stock.released", items=_describe(reservation.lines), reason=event.reason)
    RESERVATIONS.labels(released.status.lower()).inc()


async def commit_for_order(event: OrderConfirmed, ctx: MessageContext) -> None:
    reservations = ReservationRepository(ctx.session)
    reservation = await reservations.get(event.order_id, for_update=True)
    if reservation is None:
        # The order service confirms only after our inventory.reserved.
        raise PermanentError(f"order {event.order_id} confirmed without a reservation")
    committed = _transition(reservation.commit)
    if committed.status is reservation.status:
        log.info("commit.skipped", status=reservation.status)
        return
    stock = StockRepository(ctx.session)
    levels = await stock.lock(line.sku for line in reservation.lines)
    await stock.save(commit_stock(reservation.lines, levels))
    await reservations.set_status(event.order_id, committed.status)
    log.info("stock.committed", items=_describe(reservation.lines))
    RESERVATIONS.labels(committed.status.lower()).inc()


def build_handlers(runtime: Runtime) -> dict[type[Event], Handler[Any]]:
    return {
        OrderCreated: reserve_for_order,
        OrderConfirmed: commit_for_order,
        OrderCancelled: release_for_order,
    }


async def _locked(reservations: ReservationRepository, order_id: UUID) -> Reservation:
    reservation = await reservations.get(order_id, for_update=True)
    if reservation is None:
        # Reservations are never deleted, and the caller's insert just conflicted.
        raise RuntimeError(f"reservation of order {order_id} vanished")
    return reservation


def _transition(step: Callable[[], Reservation]) -> Reservation:
    try:
        return step()
    except ReservationConflict as exc:
        # Contradictory events: park the message in the DLQ for a person to look at.
        raise PermanentError(str(exc)) from exc


def _stock_lines(lines: tuple[Line, ...]) -> tuple[StockLine, ...]:
    return tuple(StockLine(sku=line.sku, quantity=line.quantity) for line in lines)


def _describe(lines: tuple[Line, ...]) -> dict[str, int]:
    return demand(lines)
