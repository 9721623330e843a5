"""What the order service's code needs beyond its database: nothing yet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from order_service.settings import Settings


@dataclass(frozen=True, slots=True)
class Dependencies:
    """Empty: orders talk to nothing but their database and the broker."""


@asynccontextmanager
async def open_dependencies(settings: Settings) -> AsyncIterator[Dependencies]:
    yield Dependencies()
