"""Apply the database policy: one login role and one database per service.

Each role owns its database, has no other power (NOSUPERUSER NOCREATEDB
NOCREATEROLE), and PUBLIC loses CONNECT/TEMPORARY on it, so no other service
can even connect. Since PostgreSQL 15 the ``public`` schema belongs to
``pg_database_owner``: the owning role creates its tables there, nobody else can.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg
import structlog

from shopctl.config import DEFAULT_CONNECT_TIMEOUT
from shopctl.setup.passwords import scram_sha256_verifier
from shopctl.setup.policy import ServiceDatabase, password_for
from shopctl.setup.waiting import patiently

log = structlog.get_logger("shopctl.setup")

DEFAULT_WAIT = 60.0
ROLE_OPTIONS = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"


async def apply_databases(
    admin_url: str,
    databases: Sequence[ServiceDatabase],
    environ: Mapping[str, str],
    *,
    wait: float = DEFAULT_WAIT,
) -> list[str]:
    connection = await patiently(
        lambda: asyncpg.connect(admin_url, timeout=DEFAULT_CONNECT_TIMEOUT),
        within=wait,
        what="PostgreSQL",
        retry_on=(OSError, TimeoutError, asyncpg.CannotConnectNowError),
    )
    done: list[str] = []
    try:
        for database in databases:
            done.append(await _apply_role(connection, database, password_for(database, environ)))
            done.append(await _apply_database(connection, database))
            log.info("setup.database", role=database.role, database=database.database)
    finally:
        await connection.close()
    return done


async def _apply_role(
    connection: asyncpg.Connection, database: ServiceDatabase, password: str
) -> str:
    # A SCRAM verifier keeps the password out of the server's statement log; SASLprep
    # is the identity only for ASCII, so other passwords are left for the server to hash.
    secret = scram_sha256_verifier(password) if password.isascii() else password
    exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", database.role)
    verb = "ALTER" if exists else "CREATE"
    await _execute_formatted(
        connection, f"{verb} ROLE %I WITH {ROLE_OPTIONS} PASSWORD %L", database.role, secret
    )
    return f"{verb.lower()}d role {database.role}"


async def _apply_database(connection: asyncpg.Connection, database: ServiceDatabase) -> str:
    exists = await connection.fetchval(
        "SELECT 1 FROM pg_database WHERE datname = $1", database.database
    )
    if exists:
        await _execute_formatted(
            connection, "ALTER DATABASE %I OWNER TO %I", database.database, database.role
        )
    else:
        await _execute_formatted(
            connection, "CREATE DATABASE %I OWNER %I", database.database, database.role
        )
    await _execute_formatted(
        connection, "REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC", database.database
    )
    state = "exists" if exists else "created"
    return f"database {database.database} {state}, owned by {database.role}, closed to PUBLIC"


async def _execute_formatted(connection: asyncpg.Connection, template: str, *args: str) -> None:
    """DDL takes no bind parameters: let the server quote names (%I) and literals (%L)."""
    placeholders = ", ".join(f"${i}::text" for i in range(1, len(args) + 1))
    statement = await connection.fetchval(f"SELECT format('{template}', {placeholders})", *args)
    await connection.execute(statement)
