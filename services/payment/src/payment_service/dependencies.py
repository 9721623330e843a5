"""What the payment service's code needs beyond its database: the payment gateway,
and the key that opens the card tokens sealed for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from service_kit import Database
from service_kit.keys import read_pem
from service_kit.sealing import Opener

from payment_service.adapters.gateway import PaymentGateway, TimeLimitedGateway
from payment_service.adapters.sandbox_gateway import SandboxGateway
from payment_service.settings import Settings


@dataclass(frozen=True, slots=True)
class Dependencies:
    gateway: PaymentGateway
    payment_tokens: Opener


@asynccontextmanager
async def open_dependencies(settings: Settings, database: Database) -> AsyncIterator[Dependencies]:
    # The sandbox holds no connection; a real gateway's client would be opened
    # here and closed after the yield.
    pem = read_pem(
        pem=settings.payment_private_key,
        file=settings.payment_private_key_file,
        what="private key to open sealed card tokens",
        variable="PAYMENT_PRIVATE_KEY",
    )
    yield Dependencies(
        gateway=TimeLimitedGateway(
            SandboxGateway(amount_limit=settings.payment_amount_limit),
            timeout=settings.payment_gateway_timeout,
        ),
        payment_tokens=Opener(pem),
    )
