"""The outbox and inbox stop growing: rows are forgotten after their retention window.

Tested with a clock the test moves, not by waiting.
"""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from events import Housekeeper
from events._tables import inbox, outbox
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def add_rows(sessions: async_sessionmaker[AsyncSession]) -> None:
    def out(age: timedelta | None, sent: bool) -> dict[str, object]:
        created = NOW - (age or timedelta(0))
        return {
            "event_id": uuid4(),
            "routing_key": "thing.happened",
            "correlation_id": "t-1",
            "body": "{}",
            "headers": {},
            "created_at": created,
            "sent_at": created if sent else None,
        }

    async with sessions() as session, session.begin():
        await session.execute(
            insert(outbox),
            [
                out(timedelta(days=2), sent=True),  # sent long ago: pruned
                out(timedelta(hours=1), sent=True),  # sent lately: kept
                out(timedelta(minutes=5), sent=False),  # waiting: never pruned
            ],
        )
        await session.execute(
            insert(inbox),
            [
                {
                    "consumer": "q",
                    "event_id": uuid4(),
                    "event_type": "thing.happened",
                    "correlation_id": "t-1",
                    "received_at": NOW - age,
                }
                for age in (timedelta(days=8), timedelta(days=6))
            ],
        )


async def counts(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with sessions() as session:
        out = (await session.execute(select(func.count()).select_from(outbox))).scalar_one()
        seen = (await session.execute(select(func.count()).select_from(inbox))).scalar_one()
        return int(out), int(seen)


async def test_sent_outbox_rows_and_old_inbox_rows_are_pruned_waiting_rows_never(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_rows(sessions)
    keeper = Housekeeper(
        sessions,
        inbox_retention=timedelta(days=7),
        outbox_retention=timedelta(days=1),
        clock=lambda: NOW,
    )
    swept = await keeper.sweep()
    assert (swept.outbox, swept.inbox) == (1, 1)
    assert swept.backlog == 1
    assert swept.oldest_unsent == timedelta(minutes=5)
    assert await counts(sessions) == (2, 1)

    later = Housekeeper(sessions, clock=lambda: NOW + timedelta(days=30))
    swept = await later.sweep()
    assert (swept.outbox, swept.inbox) == (1, 1)
    assert await counts(sessions) == (1, 0), "the unsent row waits for the relay, however old"
