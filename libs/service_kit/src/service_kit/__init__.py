"""What every shop service shares at its edges."""

from events.logs import configure_logging

from service_kit.app import (
    RuntimeDep,
    ServiceDefinition,
    SessionDep,
    create_app,
    get_runtime,
    main,
)
from service_kit.migrations import run_env, upgrade_head
from service_kit.runtime import Runtime
from service_kit.settings import ServiceSettings

__all__ = [
    "Runtime",
    "RuntimeDep",
    "ServiceDefinition",
    "ServiceSettings",
    "SessionDep",
    "configure_logging",
    "create_app",
    "get_runtime",
    "main",
    "run_env",
    "upgrade_head",
]
