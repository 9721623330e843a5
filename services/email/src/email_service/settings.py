"""The email service's configuration, read from environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from service_kit import ServiceSettings

DEFAULT_SMTP_TIMEOUT = 10.0


class Settings(ServiceSettings):
    port: int = 8003
    """``PORT``: where the HTTP API listens."""

    database_url: str = "postgresql://shop_email:shop_email@127.0.0.1:5432/shop_email"
    """``DATABASE_URL``: the email service's own database."""

    amqp_url: str = "amqp://shop_email:shop_email@127.0.0.1:5672/"
    """``AMQP_URL``: the broker, as the email service's own user."""

    smtp_host: str = "127.0.0.1"
    """``SMTP_HOST``: the SMTP server every email goes to (Mailpit in development)."""

    smtp_port: int = Field(default=1025, ge=1, le=65535)
    """``SMTP_PORT``: its port (1025 is Mailpit's)."""

    smtp_timeout: float = Field(default=DEFAULT_SMTP_TIMEOUT, gt=0, le=120)
    """``SMTP_TIMEOUT``: seconds one send may take, connect to last reply."""

    smtp_from: str = Field(default="Shop <orders@shop.example>", min_length=3, max_length=256)
    """``SMTP_FROM``: the ``From`` header (and envelope sender) of every email."""

    smtp_username: str | None = None
    """``SMTP_USERNAME``: log in with this user when set (with ``SMTP_PASSWORD``)."""

    smtp_password: SecretStr | None = None
    """``SMTP_PASSWORD``: the SMTP password; never logged."""

    smtp_starttls: bool = False
    """``SMTP_STARTTLS``: upgrade the connection with STARTTLS (required when true)."""
