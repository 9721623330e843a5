"""Transactional outbox: write events in the caller's transaction, relay them later.

``add`` is all a service calls. ``OutboxRelay`` publishes pending rows with
confirms and marks them sent. Delivery is at-least-once: a relay that dies after
publishing and before marking publishes again, and consumers deduplicate by
event id (see ``events.inbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import asyncpg
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events.catalogue import Event
from events.envelope import Envelope, OutboundMessage
from events.errors import PublishError
from events.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, PUBLISHED
from events.publisher import Publisher
from events.tables import OUTBOX_CHANNEL, outbox
from events.tracing import current_trace_headers

log = structlog.get_logger("events.outbox")

DEFAULT_BATCH_SIZE = 200
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_RETENTION = timedelta(days=7)
DEFAULT_HOUSEKEEPING_INTERVAL = 30.0

# Built once (see events.inbox._CLAIM): the values travel as parameters.
_ADD = outbox.insert()


async def add(
    session: AsyncSession,
    event: Event,
    *,
    correlation_id: str | None = None,
    causation_id: UUID | None = None,
) -> Envelope:
    """Stage ``event`` for publishing; it is sent only if the session commits."""
    envelope = Envelope.wrap(event, correlation_id=correlation_id, causation_id=causation_id)
    message = OutboundMessage.from_envelope(envelope, current_trace_headers())
    await session.execute(
        _ADD,
        {
            "event_id": envelope.id,
            "routing_key": message.routing_key,
            "correlation_id": message.correlation_id,
            "body": message.body.decode(),
            "headers": message.headers,
            "created_at": envelope.occurred_at,
        },
    )
    return envelope


# Only the oldest unsent row of each correlation id is eligible: events of one
# order leave in the order they were written even with several relays, and a
# batch never holds two events of one order, so it can be published concurrently.
_CLAIM = text(
    """
    SELECT o.seq, o.event_id, o.routing_key, o.correlation_id, o.body, o.headers, o.created_at
    FROM outbox o
    WHERE o.sent_at IS NULL
      AND NOT EXISTS (
          SELECT 1 FROM outbox p
          WHERE p.correlation_id = o.correlation_id AND p.sent_at IS NULL AND p.seq < o.seq)
    ORDER BY o.seq
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)
_MARK_FAILED = text(
    "UPDATE outbox SET attempts = attempts + 1, last_error = :error WHERE seq = ANY(:seqs)"
)
_PRUNE = text("DELETE FROM outbox WHERE sent_at < now() - CAST(:retention AS interval)")
_BACKLOG = text(
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
    "FROM outbox WHERE sent_at IS NULL"
)


# Mark the batch sent and, in the same round trip, say whether an order in it
# has a next event: that one became eligible just now, and its NOTIFY came (and
# was consumed) before. The SELECT sees the table as it was before the UPDATE,
# hence the batch's own rows are excluded by seq.
_MARK_SENT = text(
    """
    WITH sent AS (
        UPDATE outbox SET sent_at = now(), attempts = attempts + 1
        WHERE seq = ANY(:seqs)
        RETURNING correlation_id
    )
    SELECT EXISTS (
        SELECT 1 FROM outbox
        WHERE sent_at IS NULL
          AND correlation_id IN (SELECT correlation_id FROM sent)
          AND seq <> ALL(:seqs))
    """
)


@dataclass(frozen=True, slots=True)
class RelayResult:
    published: int
    failed: int
    more: bool = False  # go again at once: eligible rows are (probably) waiting


class OutboxRelay:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        listen_dsn: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        retention: timedelta = DEFAULT_RETENTION,
        housekeeping_interval: float = DEFAULT_HOUSEKEEPING_INTERVAL,
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self._listen_dsn = listen_dsn
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retention = retention
        self._housekeeping_interval = housekeeping_interval
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    async def relay_once(self) -> RelayResult:
        """Publish one batch of eligible rows; mark the confirmed ones sent."""
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(_CLAIM, {"limit": self._batch_size})).all()
            if not rows:
                return RelayResult(0, 0)
            outcomes = await asyncio.gather(*(self._publish(row) for row in rows))
            sent = [row.seq for row, error in zip(rows, outcomes, strict=True) if error is None]
            failed = [row.seq for row, error in zip(rows, outcomes, strict=True) if error]
            more = False
            if sent:
                next_waiting = (await session.execute(_MARK_SENT, {"seqs": sent})).scalar()
                more = len(rows) == self._batch_size or bool(next_waiting)
            if failed:
                first_error = next(e for e in outcomes if e)
                await session.execute(_MARK_FAILED, {"seqs": failed, "error": first_error})
                # One line per batch: during a broker outage every row fails alike.
                log.warning(
                    "outbox.publish_failed", failed=len(failed), sent=len(sent), error=first_error
                )
        return RelayResult(len(sent), len(failed), more and not failed)

    async def _publish(self, row: object) -> str | None:
        message = OutboundMessage(
            routing_key=row.routing_key,  # type: ignore[attr-defined]
            message_id=str(row.event_id),  # type: ignore[attr-defined]
            correlation_id=row.correlation_id,  # type: ignore[attr-defined]
            body=row.body.encode(),  # type: ignore[attr-defined]
            timestamp=row.created_at,  # type: ignore[attr-defined]
            headers=row.headers,  # type: ignore[attr-defined]
        )
        bound = structlog.contextvars.bound_contextvars(
            event_type=message.routing_key,
            event_id=message.message_id,
            correlation_id=message.correlation_id,
            causation_id=message.headers.get("x-causation-id"),
        )
        with bound:
            try:
                await self._publisher.publish(message)
            except PublishError as exc:
                PUBLISHED.labels(message.routing_key, "failed").inc()
                return str(exc)
            PUBLISHED.labels(message.routing_key, "published").inc()
            log.info("event.published")
            return None

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def run(self) -> None:
        housekeeping = asyncio.create_task(self._housekeep(), name="outbox-housekeeping")
        try:
            while not self._stopping.is_set():
                # Clear before reading so a NOTIFY that lands mid-batch is not lost.
                self._wake.clear()
                try:
                    await self._ensure_listener()
                    result = await self.relay_once()
                except Exception as exc:  # database or broker gone: the loop must live on
                    log.warning("outbox.relay_failed", error=repr(exc))
                    result = RelayResult(0, 1)
                if result.more:
                    # Not after every batch: below full load the next pass would
                    # find nothing, one empty transaction per event relayed.
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            await self._close_listener()

    async def _housekeep(self) -> None:
        while True:
            try:
                async with self._sessions() as session, session.begin():
                    await session.execute(_PRUNE, {"retention": self._retention})
                    count, age = (await session.execute(_BACKLOG)).one()
                OUTBOX_BACKLOG.set(count)
                OUTBOX_OLDEST_AGE.set(float(age))
            except Exception as exc:
                log.warning("outbox.housekeeping_failed", error=repr(exc))
            await asyncio.sleep(self._housekeeping_interval)

    async def _ensure_listener(self) -> None:
        if self._listen_dsn is None or (self._listener and not self._listener.is_closed()):
            return
        try:
            self._listener = await asyncpg.connect(self._listen_dsn, timeout=5)
            await self._listener.add_listener(OUTBOX_CHANNEL, self._on_notify)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            # Polling keeps events flowing; LISTEN only makes them fast.
            log.warning("outbox.listen_failed", error=repr(exc))
            self._listener = None

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _close_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
        self._listener = None
