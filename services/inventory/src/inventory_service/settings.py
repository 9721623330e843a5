"""The inventory service's configuration, read from environment variables."""

from __future__ import annotations

from service_kit import ServiceSettings


class Settings(ServiceSettings):
    """Defaults work on a developer machine; every field is overridden by its env var.

    The inventory needs nothing beyond what every service reads (``LOG_LEVEL``,
    ``LOG_FORMAT``, ``HOST``, ``SHUTDOWN_GRACE``, ... see ``ServiceSettings``).
    """

    port: int = 8001
    """``PORT``: the HTTP port."""

    database_url: str = "postgresql://shop_inventory:shop_inventory@127.0.0.1:5432/shop_inventory"
    """``DATABASE_URL``: the inventory's own database (stock, reservations, outbox, inbox)."""

    amqp_url: str = "amqp://shop_inventory:shop_inventory@127.0.0.1:5672/"
    """``AMQP_URL``: the broker carrying the ``events`` exchange."""
