"""What every shop service shares at its edges: settings, database, lifespan,
roles, health, metrics, migrations and the command line."""

from service_kit.app import DatabaseDep, create_app, dependency, main
from service_kit.auth import AUTH_RESPONSES, CallerDep, OperatorDep, Principal, requires
from service_kit.database import Database
from service_kit.definition import EventHandler, Job, ServiceDefinition
from service_kit.migrations import upgrade_head
from service_kit.runtime import Runtime
from service_kit.settings import Role, ServiceSettings
from service_kit.unit_of_work import SqlUnitOfWork, UnitOfWork

__all__ = [
    "AUTH_RESPONSES",
    "CallerDep",
    "Database",
    "DatabaseDep",
    "EventHandler",
    "Job",
    "OperatorDep",
    "Principal",
    "Role",
    "Runtime",
    "ServiceDefinition",
    "ServiceSettings",
    "SqlUnitOfWork",
    "UnitOfWork",
    "create_app",
    "dependency",
    "main",
    "requires",
    "upgrade_head",
]
