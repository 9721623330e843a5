"""Keeping the messaging tables small: rows are forgotten after a retention window.

Sent outbox rows (with their bodies) go after ``outbox_retention``; inbox rows
after ``inbox_retention``, which is also how far back a redelivery is still
recognised as a duplicate: a dead letter older than that must not be replayed
(see ``shopctl dlq replay``). Several processes may run this side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events._metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from events._tables import inbox, outbox

log = structlog.get_logger("events.housekeeping")

DEFAULT_INBOX_RETENTION = timedelta(days=7)
DEFAULT_OUTBOX_RETENTION = timedelta(days=1)
DEFAULT_INTERVAL = 30.0

_PRUNE_OUTBOX = delete(outbox).where(outbox.c.sent_at < bindparam("before"))
_PRUNE_INBOX = delete(inbox).where(inbox.c.received_at < bindparam("before"))
_BACKLOG = select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None))


@dataclass(frozen=True, slots=True)
class Swept:
    outbox: int  # sent rows deleted
    inbox: int  # remembered deliveries forgotten
    backlog: int  # rows still waiting to be published
    oldest_unsent: timedelta


class Housekeeper:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        inbox_retention: timedelta = DEFAULT_INBOX_RETENTION,
        outbox_retention: timedelta = DEFAULT_OUTBOX_RETENTION,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._inbox_retention = inbox_retention
        self._outbox_retention = outbox_retention
        self._interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> Swept:
        """One round: prune both tables, measure the backlog (one transaction)."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            sent = await session.execute(_PRUNE_OUTBOX, {"before": now - self._outbox_retention})
            seen = await session.execute(_PRUNE_INBOX, {"before": now - self._inbox_retention})
            backlog, oldest = (await session.execute(_BACKLOG)).one()
        swept = Swept(
            outbox=_count(sent),
            inbox=_count(seen),
            backlog=int(backlog),
            oldest_unsent=max(now - oldest, timedelta(0)) if oldest else timedelta(0),
        )
        OUTBOX_BACKLOG.set(swept.backlog)
        OUTBOX_OLDEST_AGE.set(swept.oldest_unsent.total_seconds())
        if swept.outbox or swept.inbox:
            log.info("housekeeping.pruned", outbox=swept.outbox, inbox=swept.inbox)
        return swept

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="messaging-housekeeping")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # the database may be away: try again next round
                log.warning("housekeeping.failed", error=repr(exc))
            await asyncio.sleep(self._interval)


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
