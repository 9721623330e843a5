"""The email service, wired: settings, dependencies, unit of work, handlers, routes."""

from __future__ import annotations

from pathlib import Path

from service_kit import ServiceDefinition

from email_service.adapters.tables import metadata
from email_service.api.routes import emails_router
from email_service.dependencies import Dependencies, open_dependencies
from email_service.handlers import HANDLERS
from email_service.settings import Settings
from email_service.unit_of_work import SqlUnitOfWork, UnitOfWork

SERVICE: ServiceDefinition[Settings, UnitOfWork, Dependencies] = ServiceDefinition(
    name="email",
    description=(
        "Emails customers about their orders (received, confirmed, cancelled), "
        "exactly once per order and kind, over SMTP."
    ),
    settings=Settings,
    dependencies=open_dependencies,
    unit_of_work=SqlUnitOfWork,
    handlers=HANDLERS,
    routers=[emails_router],
    migrations=Path(__file__).parent / "migrations",
    tables=metadata,
)
