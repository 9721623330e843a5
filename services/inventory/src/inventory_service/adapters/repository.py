"""Queries of the inventory, all inside the caller's transaction.

Locking rules, so concurrent handlers never oversell nor deadlock:

- stock rows are locked with ``SELECT ... FOR UPDATE`` in sorted SKU order, so two
  orders sharing SKUs always queue up on the same first row;
- a reservation is created with ``INSERT ... ON CONFLICT DO NOTHING``: of two
  concurrent writers for one order (order.created racing order.cancelled, or a
  duplicate), exactly one wins and the other sees it lost;
- an existing reservation is locked before it changes, and before its stock rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from inventory_service.adapters.tables import reservation_lines, reservations, stock
from inventory_service.domain import Line, Reservation, ReservationStatus, StockLevel


class StockRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, sku: str) -> StockLevel | None:
        row = (await self._session.execute(select(stock).where(stock.c.sku == sku))).one_or_none()
        return None if row is None else StockLevel(row.sku, row.available, row.reserved)

    async def lock(self, skus: Iterable[str]) -> dict[str, StockLevel]:
        """Lock the rows of ``skus`` that exist, in sorted order; unknown SKUs are absent."""
        # Rows are locked as the sorted result is produced, so the ORDER BY is
        # what makes the lock order deterministic.
        query = (
            select(stock)
            .where(stock.c.sku.in_(sorted(set(skus))))
            .order_by(stock.c.sku)
            .with_for_update()
        )
        rows = (await self._session.execute(query)).all()
        return {row.sku: StockLevel(row.sku, row.available, row.reserved) for row in rows}

    async def save(self, levels: Iterable[StockLevel]) -> None:
        """Store new levels of rows this transaction has locked."""
        for level in levels:
            await self._session.execute(
                stock.update()
                .where(stock.c.sku == level.sku)
                .values(available=level.available, reserved=level.reserved, updated_at=func.now())
            )

    async def set_available(self, sku: str, available: int) -> StockLevel:
        """Restock: set the sellable quantity, creating the SKU if it is new."""
        new = insert(stock).values(sku=sku, available=available, reserved=0)
        upsert = new.on_conflict_do_update(
            index_elements=[stock.c.sku],
            set_={"available": new.excluded.available, "updated_at": func.now()},
        ).returning(stock.c.sku, stock.c.available, stock.c.reserved)
        row = (await self._session.execute(upsert)).one()
        return StockLevel(row.sku, row.available, row.reserved)


class ReservationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, order_id: UUID, *, for_update: bool = False) -> Reservation | None:
        query = select(reservations.c.status).where(reservations.c.order_id == order_id)
        if for_update:
            query = query.with_for_update()
        status = (await self._session.execute(query)).scalar_one_or_none()
        if status is None:
            return None
        lines = await self._session.execute(
            select(reservation_lines.c.sku, reservation_lines.c.quantity)
            .where(reservation_lines.c.order_id == order_id)
            .order_by(reservation_lines.c.line_no)
        )
        return Reservation(
            order_id=order_id,
            status=ReservationStatus(status),
            lines=tuple(Line(row.sku, row.quantity) for row in lines),
        )

    async def add(self, reservation: Reservation) -> bool:
        """Store a new reservation; False (and nothing written) if the order has one."""
        claimed = await self._session.execute(
            insert(reservations)
            .values(order_id=reservation.order_id, status=reservation.status.value)
            .on_conflict_do_nothing(index_elements=[reservations.c.order_id])
            .returning(reservations.c.order_id)
        )
        if claimed.first() is None:
            return False
        if reservation.lines:
            await self._session.execute(
                reservation_lines.insert(),
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
        await self._session.execute(
            reservations.update()
            .where(reservations.c.order_id == order_id)
            .values(status=status.value, updated_at=func.now())
        )
