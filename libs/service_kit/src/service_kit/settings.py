"""Configuration by environment variables, one typed ``Settings`` per service.

A service's settings class names its service (``SERVICE = "payment"``); the
defaults that differ per service (port, broker user, database) are derived
from that name and the shop's contract, so they are written down once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from shop_contract import PORTS, account_name
from shop_contract.auth import DEFAULT_AUDIENCE, DEFAULT_ISSUER

# Where ``make setup`` (``shopctl keys``) leaves the development keys.
DEV_SECRETS = Path(".secrets")

Role = Literal["api", "worker", "all"]


class ServiceSettings(BaseSettings):
    """What every service reads. Subclasses set ``SERVICE`` and add their own fields."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    SERVICE: ClassVar[str]

    amqp_url: str = Field(default="", description="derived: amqp://shop_<svc>:…@127.0.0.1:5672/")
    # Broker users are <prefix>shop_<svc> (``shopctl setup --prefix``): the trust check on
    # every delivery expects each event from its owner's user.
    broker_user_prefix: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")
    database_url: str = Field(
        default="", description="derived: postgresql://shop_<svc>:…/shop_<svc>"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="derived: the contract's port")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["console", "json"] = "console"
    # Seconds between AMQP heartbeats: a silent (black-holed) broker is noticed
    # after about two missed beats.
    amqp_heartbeat: int = Field(default=15, ge=1, le=600)
    # Members each quorum queue is created with (x-quorum-initial-group-size); None:
    # the broker's quorum_cluster_size (3). RabbitMQ refuses a redeclare with another
    # value, so every process declaring the queues must be given the same one.
    quorum_replicas: int | None = Field(default=None, ge=1, le=64)
    migrate_on_start: bool = True
    # Seconds a stopping service gives in-flight messages before requeueing them.
    shutdown_grace: float = Field(default=20.0, ge=0)
    # Channels consuming at once, each a batch at a time (up to CONSUMER_BATCH_SIZE
    # deliveries in one transaction: those that arrived while the previous batch
    # ran, after waiting CONSUMER_BATCH_WAIT seconds for more; 0 adds no latency).
    consumer_concurrency: int = Field(default=2, ge=1, le=64)
    consumer_batch_size: int = Field(default=32, ge=1, le=500)
    consumer_batch_wait: float = Field(default=0.0, ge=0, le=1)
    # Connections each process keeps to its database. Budget them against the
    # server's max_connections: processes x (pool + 1 for LISTEN). The default
    # fits `make run` (five processes, 30) beside a full test run in PostgreSQL's
    # default 100 on a two-core machine, where more would only wait for CPU.
    db_pool_size: int = Field(default=5, ge=1, le=200)
    # Added to the process's niceness at start (CPU_NICENESS): processes that
    # drain queues run below the front door, so on a busy machine a burst of
    # requests is answered first and the backlog drained with what is left.
    cpu_niceness: int = Field(default=0, ge=0, le=19)
    # Remembered deliveries (inbox) are forgotten after this; a dead letter older
    # than it must not be replayed (shopctl refuses unless forced).
    inbox_retention_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)
    # Published outbox rows (and their bodies) are deleted after this.
    outbox_retention_seconds: float = Field(default=24 * 3600.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Bearer tokens are verified with this public key (PEM inline, e.g. from a
    # Secret, or a file), or the keys an identity provider publishes at a JWKS URL.
    auth_public_key: str | None = Field(default=None, repr=False)
    auth_public_key_file: Path | None = DEV_SECRETS / "auth-verify.pem"
    auth_jwks_url: str | None = None
    auth_issuer: str = DEFAULT_ISSUER
    auth_audience: str = DEFAULT_AUDIENCE

    @model_validator(mode="before")
    @classmethod
    def _derive_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        prefix = data.get("broker_user_prefix") or ""
        account = account_name(cls.SERVICE, prefix=prefix)
        derived = {
            "port": PORTS[cls.SERVICE],
            "amqp_url": f"amqp://{account}:{account}@127.0.0.1:5672/",
            "database_url": f"postgresql://{account}:{account}@127.0.0.1:5432/{account}",
        }
        return {**derived, **{k: v for k, v in data.items() if v not in (None, "")}}

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
