"""Configuration of the payment service (environment variables, case-insensitive)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from service_kit import ServiceSettings


class Settings(ServiceSettings):
    port: int = 8002
    """``PORT``: HTTP port of the API."""

    database_url: str = "postgresql://shop_payment:shop_payment@127.0.0.1:5432/shop_payment"
    """``DATABASE_URL``: the payment service's own database."""

    amqp_url: str = "amqp://shop_payment:shop_payment@127.0.0.1:5672/"
    """``AMQP_URL``: the broker, as the payment service's own user."""

    payment_amount_limit: Decimal = Field(
        default=Decimal("10000.00"), ge=0, max_digits=12, decimal_places=2
    )
    """``PAYMENT_AMOUNT_LIMIT``: the sandbox gateway declines amounts above this."""

    payment_gateway_timeout: float = Field(default=5.0, gt=0, le=60)
    """``PAYMENT_GATEWAY_TIMEOUT``: seconds to wait for the gateway before treating
    the call as failed (transient: the event is retried)."""
