"""Queries of the inventory, all inside the caller's transaction.

Locking rules, so concurrent handlers never oversell nor deadlock:

- stock rows are locked with ``SELECT ... FOR UPDATE`` in sorted SKU order, so two
  orders sharing SKUs always queue up on the same first row;
- a reservation is created with ``INSERT ... ON CONFLICT DO NOTHING``: of two
  concurrent writers for one order (order.created racing order.cancelled, or a
  duplicate), exactly one wins and the other sees it lost;
- an existing reservation is locked before it changes, and before its stock rows;
  several at once (a batch) in order-id sequence, all before any stock row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol
from uuid import UUID

from service_kit.database import ordered_array
from sqlalchemy import ARRAY, ColumnElement, ScalarSelect, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from inventory_service.adapters.tables import reservation_lines, reservations, stock
from inventory_service.domain import Line, Reservation, ReservationStatus, StockLevel

# The handlers' statements are built once: SQLAlchemy then finds their compiled
# form by a cheap cache key, and the values travel as parameters.
_STOCK_OF = select(stock).where(stock.c.sku == bindparam("sku"))
# Rows are locked as the sorted result is produced, so the ORDER BY is what makes
# the lock order deterministic.
_LOCK_STOCK = (
    select(stock)
    .where(stock.c.sku == any_(bindparam("skus", type_=ARRAY(stock.c.sku.type))))
    .order_by(stock.c.sku)
    .with_for_update()
)
_SAVE_STOCK = (
    stock.update()
    .where(stock.c.sku == bindparam("_sku"))
    .values(
        available=bindparam("_available"), reserved=bindparam("_reserved"), updated_at=func.now()
    )
)


def _lines_of_order(column: ColumnElement[Any]) -> ScalarSelect[Any]:
    return ordered_array(
        column,
        where=reservation_lines.c.order_id == reservations.c.order_id,
        order_by=reservation_lines.c.line_no,
    )


# The reservation with its lines in one round trip (one array per column).
_RESERVATION = select(
    reservations.c.status,
    _lines_of_order(reservation_lines.c.sku).label("skus"),
    _lines_of_order(reservation_lines.c.quantity).label("quantities"),
).where(reservations.c.order_id == bindparam("order_id"))
_RESERVATION_LOCKED = _RESERVATION.with_for_update(of=reservations)
_ADD_RESERVATION = (
    insert(reservations)
    .on_conflict_do_nothing(index_elements=[reservations.c.order_id])
    .returning(reservations.c.order_id)
)
_ADD_LINES = reservation_lines.insert()
# Lock the reservations (by order id, the sequence every transaction uses) and read
# the SKUs on them, in one round trip.
_LOCK_RESERVATIONS_FOR_SKUS = (
    select(reservation_lines.c.sku)
    .where(
        reservation_lines.c.order_id.in_(
            select(reservations.c.order_id)
            .where(
                reservations.c.order_id
                == any_(bindparam("order_ids", type_=ARRAY(reservations.c.order_id.type)))
            )
            .order_by(reservations.c.order_id)
            .with_for_update()
        )
    )
    .distinct()
)
_SET_STATUS = (
    reservations.update()
    .where(reservations.c.order_id == bindparam("_order_id"))
    .values(updated_at=func.now())
)


class StockRepository(Protocol):
    async def get(self, sku: str) -> StockLevel | None: ...

    async def lock(self, skus: Iterable[str]) -> dict[str, StockLevel]:
        """Lock the rows of ``skus`` that exist, in sorted order; unknown SKUs are absent."""

    async def save(self, levels: Iterable[StockLevel]) -> None:
        """Store new levels of rows this transaction has locked."""

    async def set_available(self, sku: str, available: int) -> StockLevel:
        """Restock: set the sellable quantity, creating the SKU if it is new."""


class ReservationRepository(Protocol):
    async def get(self, order_id: UUID, *, for_update: bool = False) -> Reservation | None: ...

    async def add(self, reservation: Reservation) -> bool:
        """Store a new reservation; False (and nothing written) if the order has one."""

    async def set_status(self, order_id: UUID, status: ReservationStatus) -> None: ...

    async def lock_all(self, order_ids: Iterable[UUID]) -> set[str]:
        """Lock the reservations of these orders (by order id); the SKUs on them."""


class SqlStockRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, sku: str) -> StockLevel | None:
        row = (await self._session.execute(_STOCK_OF, {"sku": sku})).one_or_none()
        return None if row is None else StockLevel(row.sku, row.available, row.reserved)

    async def lock(self, skus: Iterable[str]) -> dict[str, StockLevel]:
        """Lock the rows of ``skus`` that exist, in sorted order; unknown SKUs are absent."""
        rows = (await self._session.execute(_LOCK_STOCK, {"skus": sorted(set(skus))})).all()
        return {row.sku: StockLevel(row.sku, row.available, row.reserved) for row in rows}

    async def save(self, levels: Iterable[StockLevel]) -> None:
        """Store new levels of rows this transaction has locked."""
        rows = [
            {"_sku": level.sku, "_available": level.available, "_reserved": level.reserved}
            for level in levels
        ]
        if rows:
            # One round trip for all rows: the driver pipelines an executemany.
            await self._session.execute(_SAVE_STOCK, rows)

    async def set_available(self, sku: str, available: int) -> StockLevel:
        """Restock: set the sellable quantity, creating the SKU if it is new."""
        new = insert(stock).values(sku=sku, available=available, reserved=0)
        upsert = new.on_conflict_do_update(
            index_elements=[stock.c.sku],
            set_={"available": new.excluded.available, "updated_at": func.now()},
        ).returning(stock.c.sku, stock.c.available, stock.c.reserved)
        row = (await self._session.execute(upsert)).one()
        return StockLevel(row.sku, row.available, row.reserved)


class SqlReservationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, order_id: UUID, *, for_update: bool = False) -> Reservation | None:
        query = _RESERVATION_LOCKED if for_update else _RESERVATION
        row = (await self._session.execute(query, {"order_id": order_id})).one_or_none()
        if row is None:
            return None
        lines = zip(row.skus or (), row.quantities or (), strict=True)
        return Reservation(
            order_id=order_id,
            status=ReservationStatus(row.status),
            lines=tuple(Line(sku, quantity) for sku, quantity in lines),
        )

    async def add(self, reservation: Reservation) -> bool:
        """Store a new reservation; False (and nothing written) if the order has one."""
        claimed = await self._session.execute(
            _ADD_RESERVATION,
            {"order_id": reservation.order_id, "status": reservation.status.value},
        )
        if claimed.first() is None:
            return False
        if reservation.lines:
            await self._session.execute(
                _ADD_LINES,
                [
                    {
                        "order_id": reservation.order_id,
                        "line_no": number,
                        "sku": line.sku,
                        "quantity": line.quantity,
                    }
                    for number, line in enumerate(reservation.lines, start=1)
                ],
            )
        return True

    async def set_status(self, order_id: UUID, status: ReservationStatus) -> None:
        await self._session.execute(_SET_STATUS, {"_order_id": order_id, "status": status.value})

    async def lock_all(self, order_ids: Iterable[UUID]) -> set[str]:
        ids = list(order_ids)
        if not ids:
            return set()
        query, params = _LOCK_RESERVATIONS_FOR_SKUS, {"order_ids": ids}
        return set((await self._session.execute(query, params)).scalars())
