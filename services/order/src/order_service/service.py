"""The order service, wired: settings, dependencies, unit of work, handlers, routes."""

from __future__ import annotations

from pathlib import Path

from service_kit import ServiceDefinition

from order_service.adapters.tables import metadata
from order_service.api.routes import orders, products
from order_service.dependencies import Dependencies, open_dependencies
from order_service.handlers import HANDLERS
from order_service.jobs import JOBS
from order_service.settings import Settings
from order_service.unit_of_work import SqlUnitOfWork, UnitOfWork

SERVICE: ServiceDefinition[Settings, UnitOfWork, Dependencies] = ServiceDefinition(
    name="order",
    description=(
        "Owns the catalogue and the orders. Accepts orders (202, PENDING), then joins"
        " inventory's and payment's answers into CONFIRMED or CANCELLED."
    ),
    settings=Settings,
    dependencies=open_dependencies,
    unit_of_work=SqlUnitOfWork,
    handlers=HANDLERS,
    routers=[products, orders],
    jobs=JOBS,
    migrations=Path(__file__).parent / "migrations",
    tables=metadata,
)
