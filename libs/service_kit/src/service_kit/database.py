"""The service's connection pool to its own database, and units of work on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import structlog
from events import Transaction, transaction
from sqlalchemy import ColumnElement, ScalarSelect, event, func, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

log = structlog.get_logger("service_kit.database")

CONNECT_TIMEOUT = 3.0
STATEMENT_TIMEOUT = 10.0

# What "the database is unreachable" looks like from SQLAlchemy + asyncpg.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.TooManyConnectionsError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    engine = create_async_engine(
        url,
        # A fixed pool: overflow connections would be opened and closed again for
        # every checkout beyond the pool, each a full asyncpg connect.
        pool_size=pool_size,
        max_overflow=0,
        # No pre-ping: with asyncpg it is BEGIN; ";"; ROLLBACK (three round trips)
        # on every checkout, a fifth of a consumer transaction's CPU. The checkout
        # check below is free and sees what the server closed; a connection that
        # dies in the instant after fails its first statement (consumer and
        # ``Database.run``: run again at once; other HTTP: 503 + Retry-After).
        pool_pre_ping=False,
        pool_timeout=CONNECT_TIMEOUT,
        connect_args={"timeout": CONNECT_TIMEOUT, "command_timeout": STATEMENT_TIMEOUT},
    )
    event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    return engine


def _replace_if_closed(
    dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    """On checkout, replace a connection the server has closed since its last use
    (restart, ``pg_terminate_backend``, idle timeout): asyncpg saw the socket
    close, so asking costs no round trip. A network path that died silently is
    not seen here; the statement timeout bounds that case."""
    if dbapi_connection.driver_connection.is_closed():
        # The pool discards this connection and hands out a fresh one.
        raise sa_exc.DisconnectionError("the server closed this pooled connection")


def ordered_array(
    column: ColumnElement[Any], *, where: ColumnElement[bool], order_by: ColumnElement[Any]
) -> ScalarSelect[Any]:
    """The ``column`` values of the rows matching ``where``, as one array in
    ``order_by`` order: a parent's child rows in the parent's own SELECT, one
    round trip instead of a query per child table. NULL when there are none."""
    return (
        select(func.array_agg(aggregate_order_by(column, order_by))).where(where).scalar_subquery()
    )


def create_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


U = TypeVar("U")
R = TypeVar("R")


class Database:
    """One service process's pool, and the units of work opened on it."""

    def __init__(self, url: str, *, pool_size: int) -> None:
        self.engine = create_engine(url, pool_size=pool_size)
        self.sessions = create_sessions(self.engine)

    @asynccontextmanager
    async def unit_of_work(self, factory: Callable[[Transaction], U]) -> AsyncIterator[U]:
        """A service's unit of work (its repositories) over one new transaction:
        commits when the block ends, rolls back if it raises."""
        async with transaction(self.sessions) as tx:
            yield factory(tx)

    async def run(
        self, factory: Callable[[Transaction], U], work: Callable[[U], Awaitable[R]]
    ) -> R:
        """``work`` in a new ``unit_of_work``; what it returns, once committed.

        The server may end a pooled connection in the instant after checkout, too
        late for the checkout check (``create_engine``): then ``work`` fails on a
        dead connection and is run once more at once on a fresh one (SQLAlchemy
        has discarded the pool's older connections). Only when ``work`` itself
        failed: nothing was committed. A connection lost at COMMIT may have
        committed, so that error is raised, as is any second failure.
        """
        died: sa_exc.DBAPIError | None = None
        try:
            async with self.unit_of_work(factory) as uow:
                try:
                    return await work(uow)
                except sa_exc.DBAPIError as exc:
                    if exc.connection_invalidated:
                        died = exc
                    raise
        except sa_exc.DBAPIError as exc:
            if exc is not died:
                raise
        log.info("database.connection_replaced", error=type(died.orig).__name__)
        async with self.unit_of_work(factory) as uow:
            return await work(uow)

    async def is_ready(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()


# SQLSTATE classes meaning "cannot serve you now": connection exceptions,
# insufficient resources (too many clients), operator intervention (shutdown).
UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    # SQLAlchemy wraps the driver's error, which may wrap asyncpg's own.
    chain = [error, getattr(error, "orig", None)]
    chain.append(getattr(chain[-1], "__cause__", None))
    for candidate in filter(None, chain):
        if isinstance(candidate, UNAVAILABLE_ERRORS):
            return True
        if str(getattr(candidate, "sqlstate", "") or "").startswith(UNAVAILABLE_SQLSTATES):
            return True
    return False


def why_unavailable(error: BaseException) -> str:
    """A reason an operator can act on, for logs and the 503's detail."""
    chain = [error, getattr(error, "orig", None)]
    chain.append(getattr(chain[-1], "__cause__", None))
    for candidate in filter(None, chain):
        if isinstance(candidate, asyncpg.TooManyConnectionsError) or (
            str(getattr(candidate, "sqlstate", "") or "") == "53300"
        ):
            return (
                "PostgreSQL has no connection left (max_connections reached): lower"
                " DB_POOL_SIZE of the processes or raise max_connections"
            )
    if isinstance(error, sa_exc.TimeoutError):
        return "every connection of this process's pool is busy (DB_POOL_SIZE)"
    return "the database cannot be reached"
