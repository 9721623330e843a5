"""The service's connection pool to its own database."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from sqlalchemy import ColumnElement, ScalarSelect, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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
    return create_async_engine(
        url,
        # A fixed pool: overflow connections would be opened and closed again for
        # every checkout beyond the pool, each a full asyncpg connect.
        pool_size=pool_size,
        max_overflow=0,
        # No pre-ping: with asyncpg it is BEGIN; ";"; ROLLBACK (three round trips)
        # on every checkout, a fifth of a consumer transaction's CPU. A connection
        # that died with the server fails its first statement instead; SQLAlchemy
        # then invalidates the pool and the caller retries as for any unavailable
        # database (consumer: retry queue; HTTP: 503 + Retry-After).
        pool_pre_ping=False,
        pool_timeout=CONNECT_TIMEOUT,
        connect_args={"timeout": CONNECT_TIMEOUT, "command_timeout": STATEMENT_TIMEOUT},
    )


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
