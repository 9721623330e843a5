"""Group commit: requests that arrive while a transaction runs share the next one.

A request's own transaction costs round trips and a WAL flush whatever it
writes; under load most of a request's database time is that fixed part.
``GroupCommit.submit`` queues one item and waits for its own result; a few
runners take every item that is ready (up to ``max_batch``, waiting for
nothing, so a lone request goes at once) and hand them to ``run_batch`` in one
go. A batch that raises is run again item by item, so one bad item fails alone
and the others still succeed; unless the error would fail any batch alike (the
database is down: ``shared_failure``), which every item of the batch gets at once.

The caller's context (trace, log fields) does not reach the runner's task: what
an item needs of it travels in the item.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger("service_kit.group_commit")

T = TypeVar("T")
R = TypeVar("R")

# ``run_batch`` returns, for each item in order, its result or the exception
# that item alone failed with (the others are unaffected).
RunBatch = Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]]


@dataclass(slots=True)
class _Pending(Generic[T, R]):
    item: T
    result: asyncio.Future[R]


class GroupCommit(Generic[T, R]):
    """``async with GroupCommit(run_batch) as group: result = await group.submit(item)``.

    ``runners`` batches may run at once (each needs its own connection): while one
    waits on its commit, the next is being built.
    """

    def __init__(
        self,
        run_batch: RunBatch[T, R],
        *,
        max_batch: int = 64,
        runners: int = 2,
        shared_failure: Callable[[Exception], bool] = lambda _: False,
    ) -> None:
        if max_batch < 1 or runners < 1:
            raise ValueError("max_batch and runners must be at least 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._runners = runners
        self._shared_failure = shared_failure
        self._queue: asyncio.Queue[_Pending[T, R]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    async def __aenter__(self) -> GroupCommit[T, R]:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"group-commit-{n}") for n in range(self._runners)
        ]
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch; its result, or its own exception."""
        if self._closing or not self._tasks:
            raise RuntimeError("this group commit is not running")
        pending: _Pending[T, R] = _Pending(item, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(pending)
        return await pending.result

    async def close(self) -> None:
        """Finish what was submitted, then stop the runners."""
        self._closing = True
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._settle(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _settle(self, batch: list[_Pending[T, R]]) -> None:
        try:
            outcomes = await self._run_batch([pending.item for pending in batch])
        except Exception as exc:
            if len(batch) == 1 or self._shared_failure(exc):
                for pending in batch:
                    _resolve(pending, exc)
                return
            # One item may be what failed the batch: run each on its own, so
            # only that one gets the error.
            log.info("group_commit.batch_failed", size=len(batch), error=repr(exc))
            for pending in batch:
                await self._settle([pending])
            return
        if len(outcomes) != len(batch):  # pragma: no cover - a bug in run_batch
            error = RuntimeError(f"run_batch gave {len(outcomes)} results for {len(batch)} items")
            outcomes = [error] * len(batch)
        for pending, outcome in zip(batch, outcomes, strict=True):
            _resolve(pending, outcome)


def _resolve(pending: _Pending[T, R], outcome: R | Exception) -> None:
    # A submitter that went away (request cancelled) no longer wants its result.
    if pending.result.done():
        return
    if isinstance(outcome, Exception):
        pending.result.set_exception(outcome)
    else:
        pending.result.set_result(outcome)
