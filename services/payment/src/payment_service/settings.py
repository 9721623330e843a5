"""The payment service's configuration, read from environment variables.

Port, broker user and database come from the service's name (see
``ServiceSettings``); these are the payment service's own.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from pydantic import Field
from service_kit import ServiceSettings


class Settings(ServiceSettings):
    SERVICE: ClassVar[str] = "payment"

    payment_amount_limit: Decimal = Field(
        default=Decimal("10000.00"), ge=0, max_digits=12, decimal_places=2
    )
    """``PAYMENT_AMOUNT_LIMIT``: the sandbox gateway declines amounts above this."""

    payment_gateway_timeout: float = Field(default=5.0, gt=0, le=60)
    """``PAYMENT_GATEWAY_TIMEOUT``: seconds to wait for the gateway before treating
    the call as failed (transient: the event is retried)."""
