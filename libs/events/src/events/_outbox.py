"""Transactional outbox: events staged in the caller's transaction, relayed later.

A ``Transaction`` stages what its handler emits and ``stage`` writes it here
just before the commit. ``OutboxRelay`` publishes pending rows with confirms
and marks them sent. Delivery is at-least-once: a relay that dies after
publishing and before marking publishes again, and consumers deduplicate by
event id (see ``events._inbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events._envelope import Envelope
from events._errors import PublishError
from events._message import amqp_message, envelope_headers
from events._metrics import PUBLISHED
from events._publisher import Publisher
from events._tables import OUTBOX_CHANNEL, outbox
from events._wire import Headers

log = structlog.get_logger("events.outbox")

DEFAULT_BATCH_SIZE = 200
DEFAULT_POLL_INTERVAL = 1.0
# After a failed batch the relay waits 0.1 s, then 0.2, 0.4 ... at most 2 s.
FAILURE_BACKOFF = 0.1
MAX_FAILURE_BACKOFF = 2.0

# Built once (see events._inbox._CLAIM): the values travel as parameters.
_ADD = outbox.insert()


@dataclass(frozen=True, slots=True)
class Staged:
    """An event waiting for its transaction's commit, with the trace it was emitted in."""

    envelope: Envelope
    trace: dict[str, str]


async def stage(session: AsyncSession, staged: Sequence[Staged]) -> None:
    """Write events to the outbox in ``session``'s transaction (one statement)."""
    if not staged:
        return
    await session.execute(
        _ADD,
        [
            {
                "event_id": item.envelope.id,
                "routing_key": item.envelope.type,
                "correlation_id": item.envelope.correlation_id,
                "body": item.envelope.model_dump_json(),
                "headers": envelope_headers(item.envelope, item.trace),
                "created_at": item.envelope.occurred_at,
            }
            for item in staged
        ],
    )


# Only the oldest unsent row of each correlation id is eligible: events of one
# aggregate leave in the sequence they were written even with several relays, and
# a batch never holds two events of one aggregate, so it can be published at once.
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


# Mark the batch sent and, in the same round trip, say whether an aggregate in it
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
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self._listen_dsn = listen_dsn
        self._batch_size = batch_size
        self._poll_interval = poll_interval
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

    async def _publish(self, row: Row[Any]) -> str | None:
        headers: dict[str, Any] = row.headers
        bound = structlog.contextvars.bound_contextvars(
            event_type=row.routing_key,
            event_id=str(row.event_id),
            correlation_id=row.correlation_id,
            causation_id=headers.get(Headers.CAUSATION_ID),
        )
        message = amqp_message(
            event_id=str(row.event_id),
            routing_key=row.routing_key,
            correlation_id=row.correlation_id,
            body=row.body.encode(),
            headers=headers,
            timestamp=row.created_at,
            user_id=self._publisher.user_id,
        )
        with bound:
            try:
                await self._publisher.publish(row.routing_key, message)
            except PublishError as exc:
                PUBLISHED.labels(row.routing_key, "failed").inc()
                return str(exc)
            PUBLISHED.labels(row.routing_key, "published").inc()
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
        failures = 0
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
                if result.failed:
                    # Not again on the next NOTIFY: while the broker refuses (a node
                    # lost, confirms nacked) every new row's NOTIFY would send the whole
                    # failed batch once more, each copy a duplicate for the inboxes.
                    failures += 1
                    backoff = min(FAILURE_BACKOFF * 2 ** (failures - 1), MAX_FAILURE_BACKOFF)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), backoff)
                    continue
                failures = 0
                if result.more:
                    # Not after every batch: below full load the next pass would
                    # find nothing, one empty transaction per event relayed.
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
        finally:
            await self._close_listener()

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
