"""The unit of work this library hands out: one database transaction and the
events it causes, written to the outbox in that same transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events._envelope import Envelope
from events._event import Event
from events._outbox import Staged, stage
from events._tracing import current_trace_headers


class Transaction:
    """What a handler (or an HTTP route) works with.

    ``session`` is the open transaction; ``emit`` stages an event, and every
    staged event is written to the outbox just before the commit: published
    if and only if the transaction commits. ``caused_by`` is the event being
    handled, if any; emitted events inherit its correlation id.
    """

    def __init__(self, session: AsyncSession, *, caused_by: Envelope | None = None) -> None:
        self.session = session
        self.caused_by = caused_by
        self._staged: list[Staged] = []
        self._after_commit: list[Callable[[], None]] = []

    def for_delivery(self, envelope: Envelope) -> Transaction:
        """The same database transaction, handling another delivery of a batch: what
        it emits and its after-commit callbacks join this transaction's."""
        joined = Transaction(self.session, caused_by=envelope)
        joined._staged = self._staged
        joined._after_commit = self._after_commit
        return joined

    def emit(self, event: Event, *, trace: Mapping[str, str] | None = None) -> Envelope:
        """Stage ``event``. It continues ``trace`` (W3C trace context headers, as
        ``trace_headers()`` captured them), by default the caller's current trace:
        pass one when emitting on behalf of a request from another task."""
        envelope = Envelope.wrap(event, caused_by=self.caused_by)
        headers = current_trace_headers() if trace is None else dict(trace)
        self._staged.append(Staged(envelope, headers))
        return envelope

    @property
    def emitted(self) -> tuple[Envelope, ...]:
        return tuple(staged.envelope for staged in self._staged)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (never on rollback):
        for counters and other effects that must not happen twice on a retry."""
        self._after_commit.append(callback)

    def committed(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    async def flush(self) -> None:
        """Write the staged events to the outbox (one statement); called before commit."""
        staged, self._staged = self._staged, []
        await stage(self.session, staged)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession], *, caused_by: Envelope | None = None
) -> AsyncIterator[Transaction]:
    """``async with transaction(sessions) as tx``: commits on success, rolls back on error."""
    async with sessions() as session:
        async with session.begin():
            tx = Transaction(session, caused_by=caused_by)
            yield tx
            await tx.flush()
        tx.committed()
