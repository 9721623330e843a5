"""The service's connection pool to its own database."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import exc as sa_exc
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


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=CONNECT_TIMEOUT,
        connect_args={"timeout": CONNECT_TIMEOUT, "command_timeout": STATEMENT_TIMEOUT},
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
