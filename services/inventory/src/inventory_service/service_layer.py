"""The inventory's use cases. Each runs in a unit of work its caller opened (the
consumer, per delivery; a route, per request).

Events may come twice or out of order: the reservation's status, never the
arrival order, decides what happens. Stock rows are locked in sorted SKU order
(see ``adapters.repository``), so concurrent orders never deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from uuid import UUID

import structlog
from events import PermanentError

from inventory_service import domain
from inventory_service.adapters.metrics import RESERVATIONS
from inventory_service.domain import (
    Decision,
    Line,
    Reservation,
    ReservationConflict,
    ReservationStatus,
    StockLevel,
    demand,
)
from inventory_service.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)


async def reserve_stock(uow: UnitOfWork, order_id: UUID, lines: tuple[Line, ...]) -> None:
    """All lines or none, once per order; nothing if the order was cancelled first."""
    existing = await uow.reservations.get(order_id)
    if existing is not None:
        skip_reason = (
            # order.cancelled came first and left a tombstone: reserve nothing.
            "order cancelled before it was created"
            if existing.status is ReservationStatus.CANCELLED
            else "order already handled"
        )
        log.info("reservation.skipped", reason=skip_reason, status=existing.status)
        return
    decision = domain.reserve(order_id, lines, await uow.stock.lock(demand(lines)))
    if not await uow.reservations.add(decision.reservation):
        # A concurrent order.cancelled (or duplicate) committed its decision first.
        log.info("reservation.skipped", reason="order handled concurrently")
        return
    await _apply(uow, decision)
    log.info(f"stock.{decision.reservation.status.lower()}", items=demand(lines))


async def release_stock(uow: UnitOfWork, order_id: UUID, *, reason: str) -> None:
    """Give a cancelled order's stock back; a tombstone if it had none yet."""
    if await uow.reservations.add(Reservation.tombstone(order_id)):
        log.info("reservation.tombstoned", reason="cancelled before any reservation")
        uow.after_commit(RESERVATIONS.labels(ReservationStatus.CANCELLED.lower()).inc)
        return
    reservation = await _locked(uow, order_id)
    decision = _decide(domain.release, reservation, await _held_stock(uow, reservation))
    if decision.reservation.status is reservation.status:
        log.info("release.skipped", status=reservation.status)
        return
    await uow.reservations.set_status(order_id, decision.reservation.status)
    await _apply(uow, decision)
    log.info("stock.released", items=demand(reservation.lines), reason=reason)


async def commit_stock(uow: UnitOfWork, order_id: UUID) -> None:
    """A confirmed order's reserved stock is sold."""
    reservation = await uow.reservations.get(order_id, for_update=True)
    if reservation is None:
        # The order service confirms only after our inventory.reserved.
        raise PermanentError(f"order {order_id} confirmed without a reservation")
    decision = _decide(domain.commit, reservation, await _held_stock(uow, reservation))
    if decision.reservation.status is reservation.status:
        log.info("commit.skipped", status=reservation.status)
        return
    await uow.reservations.set_status(order_id, decision.reservation.status)
    await _apply(uow, decision)
    log.info("stock.committed", items=demand(reservation.lines))


async def lock_for_batch(
    uow: UnitOfWork, new_orders: Iterable[tuple[Line, ...]], settled_orders: Iterable[UUID]
) -> None:
    """Lock every row a batch of events will touch, in the sequence a single event
    takes them: the reservations of confirmed or cancelled orders (by order id),
    then the stock rows of those and of the new orders (by SKU). Every transaction
    locks in this one sequence, so batches and single deliveries never deadlock."""
    skus = await uow.reservations.lock_all(settled_orders)
    skus |= {line.sku for lines in new_orders for line in lines}
    if skus:
        await uow.stock.lock(skus)


async def stock_of(uow: UnitOfWork, sku: str) -> StockLevel | None:
    return await uow.stock.get(sku)


async def restock(uow: UnitOfWork, sku: str, available: int) -> StockLevel:
    """Set the sellable quantity of ``sku``, creating the SKU if it is new."""
    level = await uow.stock.set_available(sku, available)
    log.info("stock.restocked", sku=sku, available=level.available, reserved=level.reserved)
    return level


async def _apply(uow: UnitOfWork, decision: Decision) -> None:
    await uow.stock.save(decision.stock)
    if decision.event is not None:
        uow.emit(decision.event)
    uow.after_commit(RESERVATIONS.labels(decision.reservation.status.lower()).inc)


async def _held_stock(uow: UnitOfWork, reservation: Reservation) -> dict[str, StockLevel]:
    if not reservation.holds_stock:
        return {}
    return await uow.stock.lock(demand(reservation.lines))


async def _locked(uow: UnitOfWork, order_id: UUID) -> Reservation:
    reservation = await uow.reservations.get(order_id, for_update=True)
    if reservation is None:
        # Reservations are never deleted, and the caller's insert just conflicted.
        raise RuntimeError(f"reservation of order {order_id} vanished")
    return reservation


def _decide(
    step: Callable[[Reservation, Mapping[str, StockLevel]], Decision],
    reservation: Reservation,
    stock: Mapping[str, StockLevel],
) -> Decision:
    try:
        return step(reservation, stock)
    except ReservationConflict as exc:
        # Contradictory events: park the message in the DLQ for a person to look at.
        raise PermanentError(str(exc)) from exc
