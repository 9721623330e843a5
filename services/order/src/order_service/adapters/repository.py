"""Queries of the order service. Every method runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from service_kit.database import ordered_array
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Row,
    ScalarSelect,
    any_,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.adapters.tables import (
    idempotency_keys,
    order_history,
    order_lines,
    orders,
    products,
)
from order_service.domain.catalogue import OrderLine, Product
from order_service.domain.order import Order, StatusChange
from order_service.domain.outcomes import Outcome, Side
from order_service.domain.status import OrderStatus

# How each side's answer is spelled in its column.
_OUTCOME_WORDS = {
    Side.INVENTORY: {True: "RESERVED", False: "REJECTED"},
    Side.PAYMENT: {True: "AUTHORIZED", False: "DECLINED"},
}


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A key with the request it was claimed for (also what ``claim`` is given)."""

    key: str
    request_hash: str
    order_id: UUID


class Catalogue(Protocol):
    async def products(self) -> list[Product]: ...

    async def prices_of(self, skus: Iterable[str]) -> dict[str, Decimal]:
        """The catalogue price of each SKU that exists."""


class OrderRepository(Protocol):
    async def add(self, orders: Sequence[Order]) -> None:
        """Insert new orders with their lines and their history so far."""

    async def get(self, order_id: UUID, *, lock: bool = False) -> Order | None:
        """``lock=True`` holds the order's row until the transaction ends."""

    async def save_progress(self, order: Order, change: StatusChange | None) -> None:
        """Write the order's outcomes and status, and ``change`` to its history."""

    async def overdue(self, now: datetime, *, limit: int) -> list[Order]:
        """PENDING orders past their deadline, oldest deadline first, each locked for
        this transaction; orders another transaction holds are skipped, not waited for."""

    async def oldest_pending_since(self) -> datetime | None:
        """When the oldest PENDING order was placed (None: none is pending)."""


class IdempotencyKeys(Protocol):
    async def claim(
        self, claims: Sequence[IdempotencyRecord], *, expired_before: datetime
    ) -> set[str]:
        """Claim each key for its request (also a key used before ``expired_before``);
        the keys claimed. The keys are distinct; one another transaction holds is
        waited for, and not claimed if that transaction commits."""

    async def find(self, key: str) -> IdempotencyRecord | None: ...

    async def forget(self, *, used_before: datetime) -> int:
        """Delete the keys used before ``used_before``; how many."""


# --- catalogue -----------------------------------------------------------------

_PRODUCTS = select(products.c.sku, products.c.name, products.c.price).order_by(products.c.sku)
# Statements of the hot path are built once (here and below): SQLAlchemy then
# finds their compiled form by a cheap cache key; the values travel as parameters.
_PRICES = select(products.c.sku, products.c.price).where(
    products.c.sku == any_(bindparam("skus", type_=ARRAY(products.c.sku.type)))
)


class SqlCatalogue:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def products(self) -> list[Product]:
        rows = await self._session.execute(_PRODUCTS)
        return [Product(row.sku, row.name, row.price) for row in rows]

    async def prices_of(self, skus: Iterable[str]) -> dict[str, Decimal]:
        rows = await self._session.execute(_PRICES, {"skus": sorted(set(skus))})
        return {row.sku: row.price for row in rows}


# --- orders --------------------------------------------------------------------


_ADD_ORDER = orders.insert()
_ADD_LINES = order_lines.insert()
_ADD_CHANGE = order_history.insert()
_SAVE_ORDER = update(orders).where(orders.c.id == bindparam("_id"))


def _of_lines(column: ColumnElement[Any]) -> ScalarSelect[Any]:
    return ordered_array(
        column, where=order_lines.c.order_id == orders.c.id, order_by=order_lines.c.line_no
    )


def _of_history(column: ColumnElement[Any]) -> ScalarSelect[Any]:
    return ordered_array(
        column, where=order_history.c.order_id == orders.c.id, order_by=order_history.c.seq
    )


# The order with its lines and history in one round trip (arrays, one per
# column), built once: SQLAlchemy reuses the compiled form by its cache key.
_WITH_LINES_AND_HISTORY = select(
    orders,
    _of_lines(order_lines.c.sku).label("line_skus"),
    _of_lines(order_lines.c.quantity).label("line_qty"),
    _of_lines(order_lines.c.unit_price).label("line_price"),
    _of_history(order_history.c.status).label("h_status"),
    _of_history(order_history.c.at).label("h_at"),
    _of_history(order_history.c.event_type).label("h_type"),
    _of_history(order_history.c.event_id).label("h_event"),
)
_ORDER = _WITH_LINES_AND_HISTORY.where(orders.c.id == bindparam("order_id"))
_ORDER_LOCKED = _ORDER.with_for_update(of=orders)
# SKIP LOCKED: several workers sweep side by side, each taking other orders.
_OVERDUE = (
    _WITH_LINES_AND_HISTORY.where(
        orders.c.status == "PENDING", orders.c.deadline_at <= bindparam("now")
    )
    .order_by(orders.c.deadline_at)
    .limit(bindparam("limit"))
    .with_for_update(of=orders, skip_locked=True)
)
_OLDEST_PENDING = select(func.min(orders.c.created_at)).where(orders.c.status == "PENDING")


class SqlOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, orders: Sequence[Order]) -> None:
        # Three statements however many orders (asyncpg's executemany pipelines the rows).
        if not orders:
            return
        await self._session.execute(
            _ADD_ORDER, [{**_order_values(order), "id": order.id} for order in orders]
        )
        await self._session.execute(
            _ADD_LINES,
            [
                {
                    "order_id": order.id,
                    "line_no": line_no,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                }
                for order in orders
                for line_no, line in enumerate(order.lines, start=1)
            ],
        )
        await self._session.execute(
            _ADD_CHANGE,
            [_change_values(order.id, change) for order in orders for change in order.history],
        )

    async def get(self, order_id: UUID, *, lock: bool = False) -> Order | None:
        """The lock serialises the saga's join: two outcomes of one order arriving at
        once are handled one after the other, and the second sees the first's answer."""
        query = _ORDER_LOCKED if lock else _ORDER
        row = (await self._session.execute(query, {"order_id": order_id})).first()
        return None if row is None else _to_order(row)

    async def save_progress(self, order: Order, change: StatusChange | None) -> None:
        await self._session.execute(_SAVE_ORDER, {**_order_values(order), "_id": order.id})
        if change is not None:
            await self._add_change(order.id, change)

    async def overdue(self, now: datetime, *, limit: int) -> list[Order]:
        rows = await self._session.execute(_OVERDUE, {"now": now, "limit": limit})
        return [_to_order(row) for row in rows]

    async def oldest_pending_since(self) -> datetime | None:
        since: datetime | None = (await self._session.execute(_OLDEST_PENDING)).scalar_one()
        return since

    async def _add_change(self, order_id: UUID, change: StatusChange) -> None:
        await self._session.execute(_ADD_CHANGE, _change_values(order_id, change))


def _change_values(order_id: UUID, change: StatusChange) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "status": change.status.value,
        "at": change.at,
        "event_type": change.event_type,
        "event_id": change.event_id,
    }


def _to_order(row: Row[Any]) -> Order:
    lines = zip(row.line_skus or (), row.line_qty or (), row.line_price or (), strict=True)
    history = zip(
        row.h_status or (), row.h_at or (), row.h_type or (), row.h_event or (), strict=True
    )
    return Order(
        id=row.id,
        customer_id=row.customer_id,
        email=row.email,
        lines=tuple(OrderLine(sku, quantity, price) for sku, quantity, price in lines),
        created_at=row.created_at,
        updated_at=row.updated_at,
        deadline_at=row.deadline_at,
        currency=row.currency,
        status=OrderStatus(row.status),
        reason=row.reason,
        inventory=_outcome(Side.INVENTORY, row),
        payment=_outcome(Side.PAYMENT, row),
        history=[
            StatusChange(OrderStatus(status), at, event_type, UUID(str(event_id)))
            for status, at, event_type, event_id in history
        ],
    )


def _order_values(order: Order) -> dict[str, Any]:
    values: dict[str, Any] = {
        "customer_id": order.customer_id,
        "email": order.email,
        "status": order.status.value,
        "reason": order.reason,
        "total": order.total,
        "currency": order.currency,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "deadline_at": order.deadline_at,
    }
    for side in Side:
        outcome = order.outcome_of(side)
        values[f"{side.value}_outcome"] = (
            None if outcome is None else _OUTCOME_WORDS[side][outcome.positive]
        )
        values[f"{side.value}_reason"] = None if outcome is None else outcome.reason
    return values


def _outcome(side: Side, row: Row[Any]) -> Outcome | None:
    word = getattr(row, f"{side.value}_outcome")
    if word is None:
        return None
    positive = word == _OUTCOME_WORDS[side][True]
    return Outcome(side, positive, None if positive else getattr(row, f"{side.value}_reason"))


# --- idempotency keys ----------------------------------------------------------


_FIND_KEY = select(idempotency_keys.c.request_hash, idempotency_keys.c.order_id).where(
    idempotency_keys.c.key == bindparam("key")
)
# The keys of a whole batch in one statement, in key order: two transactions
# claiming overlapping keys lock them in the same order, so they never deadlock.
_CLAIMS = select(
    func.unnest(bindparam("keys", type_=ARRAY(idempotency_keys.c.key.type))).label("key"),
    func.unnest(bindparam("hashes", type_=ARRAY(idempotency_keys.c.request_hash.type))).label(
        "request_hash"
    ),
    func.unnest(bindparam("order_ids", type_=ARRAY(idempotency_keys.c.order_id.type))).label(
        "order_id"
    ),
).subquery()
_NEW_KEYS = insert(idempotency_keys).from_select(
    ["key", "request_hash", "order_id"], select(_CLAIMS).order_by(_CLAIMS.c.key)
)
# A key used before its expiry is taken over as if new (payment APIs do the same).
_CLAIM_KEYS = _NEW_KEYS.on_conflict_do_update(
    index_elements=[idempotency_keys.c.key],
    set_={
        "request_hash": _NEW_KEYS.excluded.request_hash,
        "order_id": _NEW_KEYS.excluded.order_id,
        "created_at": func.now(),
    },
    where=idempotency_keys.c.created_at < bindparam("expired_before"),
).returning(idempotency_keys.c.key)
_FORGET_KEYS = delete(idempotency_keys).where(
    idempotency_keys.c.created_at < bindparam("used_before")
)


class SqlIdempotencyKeys:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def find(self, key: str) -> IdempotencyRecord | None:
        row = (await self._session.execute(_FIND_KEY, {"key": key})).first()
        return None if row is None else IdempotencyRecord(key, row.request_hash, row.order_id)

    async def claim(
        self, claims: Sequence[IdempotencyRecord], *, expired_before: datetime
    ) -> set[str]:
        """A concurrent claim of the same key waits on the primary key until the
        holder commits (→ conflict, not claimed) or rolls back (→ claimed here)."""
        if not claims:
            return set()
        result = await self._session.execute(
            _CLAIM_KEYS,
            {
                "keys": [claim.key for claim in claims],
                "hashes": [claim.request_hash for claim in claims],
                "order_ids": [claim.order_id for claim in claims],
                "expired_before": expired_before,
            },
        )
        return set(result.scalars())

    async def forget(self, *, used_before: datetime) -> int:
        result = await self._session.execute(_FORGET_KEYS, {"used_before": used_before})
        return int(getattr(result, "rowcount", 0))
