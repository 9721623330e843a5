"""What a service is, declared once and typed: the kit runs it.

A service says what its settings are, what it opens at start-up (its
dependencies: a gateway client, an SMTP pool...), how its unit of work wraps a
transaction, which events it handles and with which routes it answers. The kit
owns how it runs: lifespan, database, broker, relay, consumer, health,
metrics, CLI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from events import Event, EventRegistry, Handler, Topology, Transaction
from fastapi import APIRouter
from shop_contract import REGISTRY, SHOP
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.database import Database
from service_kit.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)
U = TypeVar("U")
D = TypeVar("D")

EventHandler = Callable[[Any, U, D], Awaitable[None]]
"""``async def on_<event>(event, uow, deps) -> None``."""


@dataclass(frozen=True)
class Job(Generic[S, D]):
    """Work a worker process does on a schedule (sweeps, clean-ups). Every worker runs
    it: the work itself must be safe side by side (e.g. ``FOR UPDATE SKIP LOCKED``)."""

    name: str
    every: Callable[[S], float]  # seconds between runs, from the settings
    run: Callable[[Database, D], Awaitable[object]]


@dataclass(frozen=True, kw_only=True)
class ServiceDefinition(Generic[S, U, D]):
    name: str
    description: str
    settings: type[S]
    # Opened once per process (after the database, which they may use), closed at shutdown.
    dependencies: Callable[[S, Database], AbstractAsyncContextManager[D]]
    # The service's view of one transaction: its repositories and ``emit``.
    unit_of_work: Callable[[Transaction], U]
    # The events it consumes, declared once: the queue is bound to these keys.
    handlers: Mapping[type[Event], EventHandler[U, D]]
    # Before a batch's handlers run, in its transaction: lock the rows they will
    # share in one global order (so two batches never deadlock).
    lock_batch: Callable[[U, Sequence[Event]], Awaitable[None]] | None = None
    routers: Sequence[APIRouter] = ()
    jobs: Sequence[Job[S, D]] = ()
    migrations: Path
    tables: MetaData | None = None
    topology: Topology = SHOP
    registry: EventRegistry = REGISTRY

    @property
    def consumes(self) -> frozenset[str]:
        return frozenset(event.TYPE for event in self.handlers)

    def handler_for(self, event_type: type[Event], dependencies: D) -> Handler[Event]:
        """The library's ``(event, tx)`` handler for this service's ``(event, uow, deps)``
        one: what the consumer runs, and what ``events.testing.deliver`` takes."""
        handler = self.handlers[event_type]

        async def handle(event: Event, tx: Transaction) -> None:
            await handler(event, self.unit_of_work(tx), dependencies)

        return handle

    def batch_locks(self) -> Callable[[AsyncSession, Sequence[Event]], Awaitable[None]] | None:
        """``lock_batch`` as the library's consumer calls it (a session, the events)."""
        lock_batch = self.lock_batch
        if lock_batch is None:
            return None

        async def prepare(session: AsyncSession, events: Sequence[Event]) -> None:
            await lock_batch(self.unit_of_work(Transaction(session)), events)

        return prepare

    def main(self) -> None:
        """The service's console script: ``<svc>-service [serve --role R | migrate]``."""
        from service_kit.app import main  # the app module builds on this one

        main(self)
