"""The inventory service, wired: settings, dependencies, unit of work, handlers, routes."""

from __future__ import annotations

from pathlib import Path

from service_kit import ServiceDefinition

from inventory_service.adapters.tables import metadata
from inventory_service.api.routes import stock_router
from inventory_service.dependencies import Dependencies, open_dependencies
from inventory_service.handlers import HANDLERS, lock_batch
from inventory_service.settings import Settings
from inventory_service.unit_of_work import SqlUnitOfWork, UnitOfWork

SERVICE: ServiceDefinition[Settings, UnitOfWork, Dependencies] = ServiceDefinition(
    name="inventory",
    description=(
        "Stock per SKU. Reserves every line of a new order or none, releases the "
        "reservation when the order is cancelled and commits it when it is confirmed."
    ),
    settings=Settings,
    dependencies=open_dependencies,
    unit_of_work=SqlUnitOfWork,
    handlers=HANDLERS,
    lock_batch=lock_batch,
    routers=[stock_router],
    migrations=Path(__file__).parent / "migrations",
    tables=metadata,
)
