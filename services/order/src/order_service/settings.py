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
