"""What the payment service's code needs beyond its database: the payment gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from payment_service.adapters.gateway import PaymentGateway, TimeLimitedGateway
from payment_service.adapters.sandbox_gateway import SandboxGateway
from payment_service.settings import Settings


@dataclass(frozen=True, slots=True)
class Dependencies:
    gateway: PaymentGateway


@asynccontextmanager
async def open_dependencies(settings: Settings) -> AsyncIterator[Dependencies]:
    # The sandbox holds no connection; a real gateway's client would be opened
    # here and closed after the yield.
    yield Dependencies(
        gateway=TimeLimitedGateway(
            SandboxGateway(amount_limit=settings.payment_amount_limit),
            timeout=settings.payment_gateway_timeout,
        )
    )
