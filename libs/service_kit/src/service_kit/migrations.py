"""Alembic, run programmatically: ``<svc>-service migrate`` and migrate-at-start.

Every service runs in the same environment (``service_kit/alembic``) with two
version locations: the ``events`` library's branch (outbox, inbox) and the
service's own ``migrations/`` folder, which holds nothing but revision files.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from events import MIGRATIONS as MESSAGING_MIGRATIONS
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

ENVIRONMENT = Path(__file__).parent / "alembic"
# Replicas starting together must not run the same migration twice.
MIGRATION_LOCK = 7242001


def alembic_config(
    migrations: Path, sqlalchemy_url: str, metadata: MetaData | None = None
) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ENVIRONMENT))
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations", os.pathsep.join([str(MESSAGING_MIGRATIONS), str(migrations)])
    )
    config.attributes["sqlalchemy_url"] = sqlalchemy_url
    config.attributes["target_metadata"] = metadata
    return config


def upgrade_head(migrations: Path, sqlalchemy_url: str, metadata: MetaData | None = None) -> None:
    """Apply every branch's migrations (the library's and the service's)."""
    command.upgrade(alembic_config(migrations, sqlalchemy_url, metadata), "heads")


def run_env(target_metadata: MetaData | None) -> None:
    """Body of the shared ``env.py`` (online migrations over asyncpg)."""
    url = context.config.attributes["sqlalchemy_url"]

    def migrate(connection: Connection) -> None:
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        # begin(), not connect(): the advisory lock starts the transaction, so
        # Alembic sees an outer transaction and leaves committing to us.
        async with engine.begin() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    asyncio.run(run())
