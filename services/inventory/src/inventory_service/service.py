"""The inventory service, as the service kit runs it."""

from pathlib import Path

from service_kit import ServiceDefinition

from inventory_service.api.routes import stock_router
from inventory_service.handlers import build_handlers
from inventory_service.settings import Settings

SERVICE = ServiceDefinition(
    name="inventory",
    settings_type=Settings,
    migrations=Path(__file__).parent / "migrations",
    routers=[stock_router],
    handlers=build_handlers,
    description=(
        "Stock per SKU. Reserves every line of a new order or none, releases the "
        "reservation when the order is cancelled and commits it when it is confirmed."
    ),
)
