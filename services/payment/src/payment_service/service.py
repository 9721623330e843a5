"""The payment service, wired: settings, dependencies, unit of work, handlers, routes."""

from __future__ import annotations

from pathlib import Path

from service_kit import ServiceDefinition

from payment_service.adapters.tables import metadata
from payment_service.api.routes import router
from payment_service.dependencies import Dependencies, open_dependencies
from payment_service.handlers import HANDLERS
from payment_service.settings import Settings
from payment_service.unit_of_work import SqlUnitOfWork, UnitOfWork

SERVICE: ServiceDefinition[Settings, UnitOfWork, Dependencies] = ServiceDefinition(
    name="payment",
    description=(
        "Authorizes each order's total with a (sandbox) payment gateway on "
        "order.created and voids it on order.cancelled."
    ),
    settings=Settings,
    dependencies=open_dependencies,
    unit_of_work=SqlUnitOfWork,
    handlers=HANDLERS,
    routers=[router],
    migrations=Path(__file__).parent / "migrations",
    tables=metadata,
)
