"""The services' connection pool against a real PostgreSQL whose server side
closes connections (a restart, an operator's ``pg_terminate_backend``)."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from events import Transaction
from service_kit.database import Database, create_engine, create_sessions
from service_kit.settings import to_driver_url
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import NewDatabase
from tests.support.apps import wait_until
from tests.support.faults_proxy import blackhole_proxy
from tests.support.postgres import connections_closed_under, terminate_connections


async def test_connections_the_server_closed_are_replaced_at_checkout(
    new_database: NewDatabase,
) -> None:
    dsn = await new_database("pool")
    engine = create_engine(to_driver_url(dsn, "postgresql+asyncpg"), pool_size=3)
    sessions = create_sessions(engine)
    try:
        # Three connections in the pool, all idle.
        drivers = []
        async with sessions() as a, sessions() as b, sessions() as c:
            for session in (a, b, c):
                await session.execute(text("SELECT 1"))
                raw = await (await session.connection()).get_raw_connection()
                drivers.append(raw.driver_connection)
        assert engine.pool.checkedin() == 3  # type: ignore[attr-defined]

        assert await terminate_connections(dsn.rpartition("/")[2]) == 3
        # The server's goodbye and its end of the socket are read by the event
        # loop in turn. Until both are, asyncpg cannot know the connection is
        # gone (CI once checked out in between); this test is about after.
        await wait_until(lambda: _all_closed(drivers))

        # Without a ping, each of them would fail its first statement.
        async with sessions() as a, sessions() as b, sessions() as c:
            pids = {(await s.execute(text("SELECT pg_backend_pid()"))).scalar() for s in (a, b, c)}
        assert len(pids) == 3
    finally:
        await engine.dispose()


async def _all_closed(drivers: list[Any]) -> bool:
    return all(driver.is_closed() for driver in drivers)


@pytest.fixture
async def database(new_database: NewDatabase) -> AsyncIterator[Database]:
    dsn = await new_database("run")
    made = Database(to_driver_url(dsn, "postgresql+asyncpg"), pool_size=2)
    async with made.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE runs (n int)"))
    try:
        yield made
    finally:
        await made.close()


async def insert_a_run(tx: Transaction) -> int:
    await tx.session.execute(text("INSERT INTO runs VALUES (1)"))
    return 1


async def runs_kept(database: Database) -> int:
    async with database.engine.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM runs"))).scalar_one())


async def test_work_whose_connection_died_under_it_runs_once_more(database: Database) -> None:
    with connections_closed_under(
        database.engine, "before_cursor_execute", statement="INSERT"
    ) as closed:
        assert await database.run(lambda tx: tx, insert_a_run) == 1
    assert closed == ["before_cursor_execute"]
    assert await runs_kept(database) == 1


async def test_only_once_more(database: Database) -> None:
    with (
        connections_closed_under(
            database.engine, "before_cursor_execute", statement="INSERT", times=2
        ) as closed,
        pytest.raises(DBAPIError) as raised,
    ):
        await database.run(lambda tx: tx, insert_a_run)
    assert raised.value.connection_invalidated
    assert len(closed) == 2
    assert await runs_kept(database) == 0


async def test_a_connection_lost_at_commit_is_not_run_again(database: Database) -> None:
    # The COMMIT may have reached the server: running the work again could do it twice.
    attempts: list[int] = []

    async def counted(tx: Transaction) -> int:
        attempts.append(1)
        return await insert_a_run(tx)

    with connections_closed_under(database.engine, "commit") as closed, pytest.raises(DBAPIError):
        await database.run(lambda tx: tx, counted)
    assert (closed, attempts) == (["commit"], [1])


async def test_a_connection_whose_server_said_goodbye_is_replaced_before_its_socket_ends(
    new_database: NewDatabase,
) -> None:
    """The server terminates an idle pooled connection; asyncpg reads its FATAL
    goodbye but not (here: never) the end of the socket, so the checkout cannot
    tell. The next statement fails (an InternalClientError: the goodbye left the
    protocol in an error state), the connection counts as dead, and ``run`` runs
    the work again at once on a fresh one. CI once met this window by chance."""
    dsn = await new_database("goodbye")
    opened: list[Database] = []
    try:
        async with blackhole_proxy("127.0.0.1", 5432) as proxy:
            url = make_url(to_driver_url(dsn, "postgresql+asyncpg")).set(port=proxy.port)
            database = Database(url.render_as_string(hide_password=False), pool_size=1)
            opened.append(database)
            async with database.engine.begin() as connection:
                await connection.execute(text("CREATE TABLE runs (n int)"))

            proxy.lose_closes()
            assert await terminate_connections(dsn.rpartition("/")[2]) == 1
            await proxy.server_closed.wait()

            assert await database.run(lambda tx: tx, insert_a_run) == 1
            assert await runs_kept(database) == 1
    finally:
        # After the proxy has ended its sockets: on a silent one, a connection
        # would wait out its close timeout.
        for database in opened:
            await database.close()
