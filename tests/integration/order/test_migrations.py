"""Migrations build exactly the tables the code queries, seed the catalogue, and go back."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from events._tables import metadata as messaging_metadata
from order_service.adapters.tables import metadata
from order_service.service import SERVICE
from order_service.settings import Settings
from service_kit.migrations import alembic_config
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.apps import migrate


async def test_migrated_schema_matches_the_tables_module(settings: Settings) -> None:
    await migrate(SERVICE, settings)
    engine = create_async_engine(settings.sqlalchemy_url)
    try:
        async with engine.connect() as connection:

            def differences(sync_connection: sa.Connection) -> list[object]:
                context = MigrationContext.configure(
                    sync_connection,
                    opts={
                        "compare_type": True,
                        "include_name": lambda name, kind, _: (
                            kind != "table"
                            or name not in {*messaging_metadata.tables, "alembic_version"}
                        ),
                    },
                )
                return list(compare_metadata(context, metadata))

            assert await connection.run_sync(differences) == []
            prices: dict[str, object] = dict(
                (await connection.execute(sa.text("SELECT sku, price FROM products"))).all()
            )
    finally:
        await engine.dispose()
    assert {sku: str(price) for sku, price in prices.items()} == {
        "KEYBOARD-01": "89.00",
        "MOUSE-01": "29.50",
        "MONITOR-27": "249.00",
        "USB-C-HUB": "39.90",
        "HEADSET-01": "59.00",
        "WEBCAM-01": "45.00",
    }


async def test_migrating_twice_is_harmless_and_downgrade_removes_everything(
    settings: Settings,
) -> None:
    await migrate(SERVICE, settings)
    await migrate(SERVICE, settings)
    config = alembic_config(SERVICE.migrations, settings.sqlalchemy_url, SERVICE.tables)
    await asyncio.to_thread(command.downgrade, config, "base")

    engine = create_async_engine(settings.sqlalchemy_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
    finally:
        await engine.dispose()
    assert set(tables) <= {"alembic_version"}
