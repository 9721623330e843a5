"""What the order service's code needs beyond its database: the payment token
sealer, its time limits, and the group commit that places orders together."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from service_kit import Database
from service_kit.database import is_unavailable
from service_kit.group_commit import GroupCommit
from service_kit.keys import read_pem
from service_kit.sealing import Sealer

from order_service import service_layer
from order_service.domain.order import Order
from order_service.settings import Settings
from order_service.unit_of_work import SqlUnitOfWork

# Orders placed in one transaction at most; those that arrive while one commits
# go in the next (two at a time, each on its own pooled connection).
PLACEMENT_BATCH = 64
PLACEMENT_RUNNERS = 2


@dataclass(frozen=True, slots=True)
class Dependencies:
    # Seals card tokens for the payment service's key (it holds no key to open them).
    payment_tokens: Sealer
    deadline: timedelta  # a PENDING order is cancelled this long after it was placed
    idempotency_ttl: timedelta  # how long an Idempotency-Key is remembered
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Started with the process (``open_dependencies``); absent in tests of the
    # service layer, which place orders in a unit of work of their own.
    placements: GroupCommit[service_layer.PlaceOrder, Order] | None = None

    async def place(self, command: service_layer.PlaceOrder) -> Order:
        """Place the order in the next group commit (raises what refused it)."""
        if self.placements is None:
            raise RuntimeError("placing orders needs the running service's group commit")
        return await self.placements.submit(command)


@asynccontextmanager
async def open_dependencies(settings: Settings, database: Database) -> AsyncIterator[Dependencies]:
    pem = read_pem(
        pem=settings.payment_public_key,
        file=settings.payment_public_key_file,
        what="payment service public key to seal card tokens with",
        variable="PAYMENT_PUBLIC_KEY",
    )
    dependencies = Dependencies(
        payment_tokens=Sealer(pem),
        deadline=timedelta(seconds=settings.order_deadline_seconds),
        idempotency_ttl=timedelta(seconds=settings.idempotency_key_ttl_seconds),
    )

    async def place_together(
        commands: Sequence[service_layer.PlaceOrder],
    ) -> list[Order | Exception]:
        return await database.run(
            SqlUnitOfWork, lambda uow: service_layer.place_orders(uow, commands, dependencies)
        )

    async with GroupCommit(
        place_together,
        max_batch=PLACEMENT_BATCH,
        runners=PLACEMENT_RUNNERS,
        shared_failure=is_unavailable,  # one by one, each would wait for the pool again
    ) as placements:
        yield replace(dependencies, placements=placements)
