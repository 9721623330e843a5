"""Servers that are still starting (a fresh compose stack, a k8s Job) get a grace period."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from shopctl.errors import Unreachable

log = structlog.get_logger("shopctl.setup")

T = TypeVar("T")
MAX_BACKOFF = 5.0


async def patiently(
    attempt: Callable[[], Awaitable[T]],
    *,
    within: float,
    what: str,
    retry_on: tuple[type[BaseException], ...],
) -> T:
    """``attempt()`` until it succeeds, retrying ``retry_on`` errors for ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    backoff = 0.25
    while True:
        try:
            return await attempt()
        except retry_on as exc:
            if loop.time() + backoff > deadline:
                raise Unreachable(f"{what} not reachable within {within:g}s: {exc!r}") from exc
            log.info("setup.waiting", target=what, error=repr(exc), retry_in=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
