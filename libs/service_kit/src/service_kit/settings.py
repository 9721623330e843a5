"""Configuration by environment variables, one typed ``Settings`` per service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service reads. Subclasses set their own defaults (port, DSNs)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["console", "json"] = "console"
    # Seconds between AMQP heartbeats: a silent (black-holed) broker is noticed
    # after about two missed beats.
    amqp_heartbeat: int = Field(default=15, ge=1, le=600)
    migrate_on_start: bool = True
    # Seconds a stopping service gives in-flight messages before requeueing them.
    shutdown_grace: float = Field(default=20.0, ge=0)
    consumer_concurrency: int = Field(default=8, ge=1, le=256)
    # Connections each service keeps to its database. Budget them against the
    # server's max_connections: replicas x services x (pool + 1 for LISTEN).
    db_pool_size: int = Field(default=20, ge=1, le=200)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    @property
    def sqlalchemy_url(self) -> str:
        return to_driver_url(self.database_url, "postgresql+asyncpg")

    @property
    def asyncpg_dsn(self) -> str:
        return to_driver_url(self.database_url, "postgresql")


def to_driver_url(url: str, scheme: str) -> str:
    """Accept ``postgresql://`` or ``postgresql+driver://`` and return ``scheme://``."""
    _, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    return f"{scheme}://{rest}"
