"""In-memory stand-ins for the order service's database side, behind its Protocols.

``FakeOrderDatabase`` is what has been committed: the catalogue, the orders, the
idempotency keys and the envelopes in the outbox. A ``FakeUnitOfWork`` is one
transaction on it, used as the routes and the consumer use the real one:
``async with FakeUnitOfWork(db) as uow`` commits when the block ends (writing
back its rows and events, then running the ``after_commit`` callbacks) and, if
the block raises, leaves the database as it was, as PostgreSQL would.

Orders are copied in and out, as rows are: changing an ``Order`` object writes
nothing until the service layer saves it. One transaction at a time: the row
locks that serialise concurrent deliveries are PostgreSQL's business, tested in
tests/integration/order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import events.testing
from events import Envelope
from order_service.adapters.repository import (
    Catalogue,
    IdempotencyKeys,
    IdempotencyRecord,
    OrderRepository,
)
from order_service.domain.catalogue import Product
from order_service.domain.order import Order, StatusChange
from order_service.domain.status import OrderStatus

# What the migrations seed (order_service/migrations/0002_seed_catalogue.py).
SEEDED_CATALOGUE = (
    Product("KEYBOARD-01", "Mechanical keyboard", Decimal("89.00")),
    Product("MOUSE-01", "Wireless mouse", Decimal("29.50")),
    Product("MONITOR-27", "27-inch monitor", Decimal("249.00")),
    Product("USB-C-HUB", "USB-C hub", Decimal("39.90")),
    Product("HEADSET-01", "Headset", Decimal("59.00")),
    Product("WEBCAM-01", "HD webcam", Decimal("45.00")),
)


def _catalogue() -> dict[str, Product]:
    return {product.sku: product for product in SEEDED_CATALOGUE}


@dataclass
class FakeOrderDatabase:
    """What committed transactions left behind (the catalogue as seeded)."""

    products: dict[str, Product] = field(default_factory=_catalogue)
    orders: dict[UUID, Order] = field(default_factory=dict)
    idempotency_keys: dict[str, IdempotencyRecord] = field(default_factory=dict)
    keys_used_at: dict[str, datetime] = field(default_factory=dict)
    outbox: list[Envelope] = field(default_factory=list)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class FakeCatalogue:
    """``Catalogue`` over a dict of products."""

    def __init__(self, products: dict[str, Product] | None = None) -> None:
        self.rows: dict[str, Product] = dict(_catalogue() if products is None else products)

    async def products(self) -> list[Product]:
        return [self.rows[sku] for sku in sorted(self.rows)]

    async def prices_of(self, skus: Iterable[str]) -> dict[str, Decimal]:
        return {sku: self.rows[sku].price for sku in set(skus) if sku in self.rows}


class FakeOrderRepository:
    """``OrderRepository`` over a dict: the rows one transaction sees and writes."""

    def __init__(self, rows: dict[UUID, Order] | None = None) -> None:
        self.rows: dict[UUID, Order] = copy.deepcopy(rows or {})
        # Orders this transaction has read with lock=True.
        self.locked: set[UUID] = set()

    async def add(self, orders: Sequence[Order]) -> None:
        for order in orders:
            if order.id in self.rows:
                raise AssertionError(f"order {order.id} already exists (primary key)")
            self.rows[order.id] = copy.deepcopy(order)

    async def get(self, order_id: UUID, *, lock: bool = False) -> Order | None:
        if lock:
            self.locked.add(order_id)
        row = self.rows.get(order_id)
        return None if row is None else copy.deepcopy(row)

    async def save_progress(self, order: Order, change: StatusChange | None) -> None:
        row = self.rows.get(order.id)
        if row is None:
            raise AssertionError(f"save_progress of order {order.id}, which was never added")
        # Like the UPDATE: the order's own columns; the history grows by ``change`` only.
        row.status = order.status
        row.reason = order.reason
        row.inventory = order.inventory
        row.payment = order.payment
        row.updated_at = order.updated_at
        if change is not None:
            row.history.append(change)

    async def overdue(self, now: datetime, *, limit: int) -> list[Order]:
        due = sorted(
            (
                o
                for o in self.rows.values()
                if o.status is OrderStatus.PENDING and o.deadline_at <= now
            ),
            key=lambda o: o.deadline_at,
        )[:limit]
        self.locked.update(o.id for o in due)
        return [copy.deepcopy(o) for o in due]

    async def oldest_pending_since(self) -> datetime | None:
        pending = [o.created_at for o in self.rows.values() if o.status is OrderStatus.PENDING]
        return min(pending, default=None)


class FakeIdempotencyKeys:
    """``IdempotencyKeys`` over a dict: a key is claimed once, until it expires."""

    def __init__(
        self,
        rows: dict[str, IdempotencyRecord] | None = None,
        used_at: dict[str, datetime] | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.rows: dict[str, IdempotencyRecord] = dict(rows or {})
        self.used_at: dict[str, datetime] = dict(used_at or {})
        self._clock = clock

    async def claim(
        self, claims: Sequence[IdempotencyRecord], *, expired_before: datetime
    ) -> set[str]:
        if len({claim.key for claim in claims}) != len(claims):
            raise AssertionError("one key twice in a claim (PostgreSQL refuses that)")
        claimed = set()
        for claim in claims:
            if claim.key in self.rows and self.used_at[claim.key] >= expired_before:
                continue
            self.rows[claim.key] = claim
            self.used_at[claim.key] = self._clock()
            claimed.add(claim.key)
        return claimed

    async def find(self, key: str) -> IdempotencyRecord | None:
        return self.rows.get(key)

    async def forget(self, *, used_before: datetime) -> int:
        old = [key for key, at in self.used_at.items() if at < used_before]
        for key in old:
            del self.rows[key], self.used_at[key]
        return len(old)


class FakeUnitOfWork(events.testing.FakeUnitOfWork):
    """``UnitOfWork`` in memory: a working copy of ``database``, committed on success.

    ``caused_by`` is the envelope being handled, as the consumer sets it.
    """

    def __init__(
        self, database: FakeOrderDatabase | None = None, *, caused_by: Envelope | None = None
    ) -> None:
        super().__init__(caused_by=caused_by)
        self.database = database if database is not None else FakeOrderDatabase()
        self._catalogue = FakeCatalogue(self.database.products)
        self._orders = FakeOrderRepository(self.database.orders)
        self._keys = FakeIdempotencyKeys(
            self.database.idempotency_keys, self.database.keys_used_at, clock=self.database.clock
        )
        self.catalogue: Catalogue = self._catalogue
        self.orders: OrderRepository = self._orders
        self.idempotency_keys: IdempotencyKeys = self._keys

    @property
    def locked(self) -> set[UUID]:
        """Orders this transaction read with ``lock=True``."""
        return set(self._orders.locked)

    def keep(self) -> None:
        self.database.orders = self._orders.rows
        self.database.idempotency_keys = self._keys.rows
        self.database.keys_used_at = self._keys.used_at
        self.database.outbox.extend(self.envelopes)
