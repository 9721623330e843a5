"""The order service's configuration, read from environment variables."""

from __future__ import annotations

from service_kit import ServiceSettings


class Settings(ServiceSettings):
    """Defaults work on a developer machine; every field is overridable by env var."""

    port: int = 8000
    """``PORT``: HTTP port."""

    database_url: str = "postgresql://shop_order:shop_order@127.0.0.1:5432/shop_order"
    """``DATABASE_URL``: this service's own database (orders, catalogue, outbox, inbox)."""

    amqp_url: str = "amqp://shop_order:shop_order@127.0.0.1:5672/"
    """``AMQP_URL``: the RabbitMQ broker carrying the shop's events."""
