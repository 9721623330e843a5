"""What the order service's code needs beyond its database: the payment token sealer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from service_kit import Database
from service_kit.keys import read_pem
from service_kit.sealing import Sealer

from order_service.settings import Settings


@dataclass(frozen=True, slots=True)
class Dependencies:
    # Seals card tokens for the payment service's key (it holds no key to open them).
    payment_tokens: Sealer
    deadline: timedelta  # a PENDING order is cancelled this long after it was placed
    idempotency_ttl: timedelta  # how long an Idempotency-Key is remembered
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@asynccontextmanager
async def open_dependencies(settings: Settings, database: Database) -> AsyncIterator[Dependencies]:
    pem = read_pem(
        pem=settings.payment_public_key,
        file=settings.payment_public_key_file,
        what="payment service public key to seal card tokens with",
        variable="PAYMENT_PUBLIC_KEY",
    )
    yield Dependencies(
        payment_tokens=Sealer(pem),
        deadline=timedelta(seconds=settings.order_deadline_seconds),
        idempotency_ttl=timedelta(seconds=settings.idempotency_key_ttl_seconds),
    )
