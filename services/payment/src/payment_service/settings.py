"""The payment service's configuration, read from environment variables.

Port, broker user and database come from the service's name (see
``ServiceSettings``); these are the payment service's own.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from service_kit import ServiceSettings
from service_kit.settings import DEV_SECRETS


class Settings(ServiceSettings):
    SERVICE: ClassVar[str] = "payment"

    payment_amount_limit: Decimal = Field(
        default=Decimal("10000.00"), ge=0, max_digits=12, decimal_places=2
    )
    """``PAYMENT_AMOUNT_LIMIT``: the sandbox gateway declines amounts above this."""

    payment_gateway_timeout: float = Field(default=5.0, gt=0, le=60)
    """``PAYMENT_GATEWAY_TIMEOUT``: seconds to wait for the gateway before treating
    the call as failed (transient: the event is retried)."""

    payment_private_key: str | None = Field(default=None, repr=False)
    """``PAYMENT_PRIVATE_KEY``: the private key (X25519 PEM) that opens the card tokens
    the order service sealed; only this service holds it."""

    payment_private_key_file: Path | None = DEV_SECRETS / "payment-sealing.pem"
    """``PAYMENT_PRIVATE_KEY_FILE``: the same, from a file."""
