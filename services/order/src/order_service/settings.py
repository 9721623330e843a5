"""The order service's configuration, read from environment variables.

Port, broker user and database come from the service's name; everything else
is what every service reads (see ``ServiceSettings``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from service_kit import ServiceSettings
from service_kit.settings import DEV_SECRETS


class Settings(ServiceSettings):
    SERVICE: ClassVar[str] = "order"

    payment_public_key: str | None = Field(default=None, repr=False)
    """``PAYMENT_PUBLIC_KEY``: the payment service's public key (X25519 PEM); card
    tokens are sealed with it at the door, so only the payment service can read them."""

    payment_public_key_file: Path | None = DEV_SECRETS / "payment-sealing.pub.pem"
    """``PAYMENT_PUBLIC_KEY_FILE``: the same, from a file."""

    order_deadline_seconds: float = Field(default=600.0, gt=0, le=7 * 24 * 3600)
    """``ORDER_DEADLINE_SECONDS``: an order still PENDING this long after it was placed
    is cancelled ("deadline exceeded"), whatever is stuck behind it."""

    idempotency_key_ttl_seconds: float = Field(default=24 * 3600.0, gt=0)
    """``IDEMPOTENCY_KEY_TTL_SECONDS``: an Idempotency-Key is remembered this long
    (24 h, as payment APIs do); after that the key is free again."""
