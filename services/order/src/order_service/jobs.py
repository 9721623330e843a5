"""Work the order worker does on a schedule: the deadline sweep, forgetting old keys.

Several workers may run these side by side: the sweep locks the orders it takes
with SKIP LOCKED, and deleting expired keys twice deletes nothing twice.
"""

from __future__ import annotations

from service_kit import Database, Job

from order_service import service_layer
from order_service.adapters.metrics import OLDEST_PENDING_AGE
from order_service.dependencies import Dependencies
from order_service.settings import Settings
from order_service.unit_of_work import SqlUnitOfWork

SWEEP_BATCH = 100
KEYS_EVERY = 300.0


async def sweep_deadlines(database: Database, deps: Dependencies) -> None:
    """Cancel every order past its deadline, a batch per transaction."""
    now = deps.clock()  # the clock orders get their deadlines from
    while True:
        async with database.unit_of_work(SqlUnitOfWork) as uow:
            expired = await service_layer.expire_overdue_orders(uow, now=now, limit=SWEEP_BATCH)
        if expired < SWEEP_BATCH:
            break
    async with database.unit_of_work(SqlUnitOfWork) as uow:
        age = await service_layer.oldest_pending_age(uow, now=now)
    OLDEST_PENDING_AGE.set(age.total_seconds())


async def forget_keys(database: Database, deps: Dependencies) -> None:
    async with database.unit_of_work(SqlUnitOfWork) as uow:
        await service_layer.forget_idempotency_keys(uow, now=deps.clock(), ttl=deps.idempotency_ttl)


def _sweep_every(settings: Settings) -> float:
    # Often enough that an order is cancelled soon after its deadline, even a short one.
    return min(5.0, settings.order_deadline_seconds / 4)


JOBS: list[Job[Settings, Dependencies]] = [
    Job("deadlines", every=_sweep_every, run=sweep_deadlines),
    Job("idempotency-keys", every=lambda _: KEYS_EVERY, run=forget_keys),
]
