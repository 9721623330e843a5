"""Servers that are still starting (a fresh compose stack, a k8s Job) get a grace period."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from shopctl.errors import Unreachable

log = structlog.get_logger("shopctl.setup")

T = TypeVar("T")
FIRST_BACKOFF = 0.25
MAX_BACKOFF = 5.0


class Backoff:
    """Growing pauses (``first``, twice that, … at most ``MAX_BACKOFF``) until a deadline."""

    def __init__(self, within: float, *, first: float = FIRST_BACKOFF) -> None:
        self._loop = asyncio.get_running_loop()
        self.deadline = self._loop.time() + within
        self.delay = first

    def now(self) -> float:
        return self._loop.time()

    @property
    def exhausted(self) -> bool:
        """The next pause would end past the deadline."""
        return self.now() + self.delay > self.deadline

    async def pause(self) -> None:
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, MAX_BACKOFF)


async def patiently(
    attempt: Callable[[], Awaitable[T]],
    *,
    within: float,
    what: str,
    retry_on: tuple[type[BaseException], ...],
) -> T:
    """``attempt()`` until it succeeds, retrying ``retry_on`` errors for ``within`` seconds."""
    backoff = Backoff(within)
    while True:
        try:
            return await attempt()
        except retry_on as exc:
            if backoff.exhausted:
                raise Unreachable(f"{what} not reachable within {within:g}s: {exc!r}") from exc
            log.info("setup.waiting", target=what, error=repr(exc), retry_in=backoff.delay)
            await backoff.pause()
