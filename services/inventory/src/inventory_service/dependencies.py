"""What the inventory's code needs beyond its database: nothing yet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from service_kit import Database

from inventory_service.settings import Settings


@dataclass(frozen=True, slots=True)
class Dependencies:
    """Empty: the inventory talks to nothing but its database and the broker."""


@asynccontextmanager
async def open_dependencies(settings: Settings, database: Database) -> AsyncIterator[Dependencies]:
    yield Dependencies()
