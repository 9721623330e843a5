"""The order service, as the shared service kit runs it."""

from __future__ import annotations

from pathlib import Path

from service_kit import ServiceDefinition

from order_service.api.routes import orders, products
from order_service.handlers import build_handlers
from order_service.settings import Settings

SERVICE = ServiceDefinition(
    name="order",
    settings_type=Settings,
    migrations=Path(__file__).parent / "migrations",
    routers=[products, orders],
    handlers=build_handlers,
    description=(
        "Owns the catalogue and the orders. Accepts orders (202, PENDING), then joins"
        " inventory's and payment's answers into CONFIRMED or CANCELLED."
    ),
)
