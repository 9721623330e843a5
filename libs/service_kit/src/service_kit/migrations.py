"""Alembic, run programmatically: ``<svc>-service migrate`` and migrate-at-start.

Each service's ``migrations/env.py`` is three lines that call ``run_env``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def upgrade_head(migrations_dir: Path, sqlalchemy_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["sqlalchemy_url"] = sqlalchemy_url
    command.upgrade(config, "head")


def run_env(target_metadata: MetaData) -> None:
    """Body of a service's ``env.py`` (online migrations over asyncpg)."""
    url = context.config.attributes["sqlalchemy_url"]

    def migrate(connection: Connection) -> None:
        # Replicas starting together must not run the same migration twice.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7242001)")
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
