"""The email service's configuration, read from environment variables.

Port, broker user and database come from the service's name (see
``ServiceSettings``); these are the email service's own.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from service_kit import ServiceSettings

DEFAULT_SMTP_TIMEOUT = 10.0


class Settings(ServiceSettings):
    SERVICE: ClassVar[str] = "email"

    smtp_host: str = "127.0.0.1"
    """``SMTP_HOST``: the SMTP server every email goes to (Mailpit in development)."""

    smtp_port: int = Field(default=1025, ge=1, le=65535)
    """``SMTP_PORT``: its port (1025 is Mailpit's)."""

    smtp_timeout: float = Field(default=DEFAULT_SMTP_TIMEOUT, gt=0, le=10)
    """``SMTP_TIMEOUT``: seconds one send may take, connect to last reply. At most 10:
    a claim is held for three times this, which must stay within the retry budget."""

    smtp_from: str = Field(default="Shop <orders@shop.example>", min_length=3, max_length=256)
    """``SMTP_FROM``: the ``From`` header (and envelope sender) of every email."""

    smtp_username: str | None = None
    """``SMTP_USERNAME``: log in with this user when set (with ``SMTP_PASSWORD``)."""

    smtp_password: SecretStr | None = None
    """``SMTP_PASSWORD``: the SMTP password; never logged."""

    smtp_starttls: bool = False
    """``SMTP_STARTTLS``: upgrade the connection with STARTTLS (required when true)."""

    @model_validator(mode="after")
    def _pool_holds_the_claims(self) -> Settings:
        # Each consumer lane holds its batch's connection while it opens short ones
        # for claims and marks; one more serves the HTTP API.
        needed = 2 * self.consumer_concurrency + 1
        if self.db_pool_size < needed:
            raise ValueError(
                f"DB_POOL_SIZE must be at least 2 x CONSUMER_CONCURRENCY + 1 = {needed} for"
                f" the email service (it is {self.db_pool_size})"
            )
        return self
