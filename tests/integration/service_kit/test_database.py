"""The services' connection pool against a real PostgreSQL whose server side
closes connections (a restart, an operator's ``pg_terminate_backend``)."""

from service_kit.database import create_engine, create_sessions
from service_kit.settings import to_driver_url
from sqlalchemy import text

from tests.conftest import NewDatabase
from tests.support.postgres import terminate_connections


async def test_connections_the_server_closed_are_replaced_at_checkout(
    new_database: NewDatabase,
) -> None:
    dsn = await new_database("pool")
    engine = create_engine(to_driver_url(dsn, "postgresql+asyncpg"), pool_size=3)
    sessions = create_sessions(engine)
    try:
        # Three connections in the pool, all idle.
        async with sessions() as a, sessions() as b, sessions() as c:
            for session in (a, b, c):
                await session.execute(text("SELECT 1"))
        assert engine.pool.checkedin() == 3  # type: ignore[attr-defined]

        assert await terminate_connections(dsn.rpartition("/")[2]) == 3

        # Without a ping, each of them would fail its first statement.
        async with sessions() as a, sessions() as b, sessions() as c:
            pids = {(await s.execute(text("SELECT pg_backend_pid()"))).scalar() for s in (a, b, c)}
        assert len(pids) == 3
    finally:
        await engine.dispose()
