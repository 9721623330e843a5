"""The payment gateway port: what the service needs from an external payment system.

Every gateway answers ``authorize`` with ``Authorized`` or ``Declined`` (both
final business answers) and raises ``GatewayUnavailable`` when it could not give
one (timeout, outage): that is transient, so the handler lets it propagate and
the consumer retries the event later.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from uuid import UUID

DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Authorized:
    authorization_id: str


@dataclass(frozen=True, slots=True)
class Declined:
    reason: str


class GatewayUnavailable(Exception):
    """The gateway gave no answer; trying again later may succeed."""


class PaymentGateway(Protocol):
    async def authorize(
        self, *, order_id: UUID, amount: Decimal, currency: str, token: str
    ) -> Authorized | Declined:
        """Hold ``amount`` on the card behind ``token``. ``order_id`` is the idempotency
        key: authorizing the same order again returns the first authorization."""
        ...

    async def void(self, authorization_id: str) -> None:
        """Release an authorization; voiding one twice is harmless."""
        ...

    async def release(self, *, order_id: UUID) -> str | None:
        """Void whatever was authorized under the order's idempotency key, even an
        authorization whose answer we never received; the voided id, or None."""
        ...


class TimeLimitedGateway:
    """Puts a deadline on every call to ``inner``: a hung gateway must not hold the
    handler's transaction (and the payment row's lock) open indefinitely."""

    def __init__(self, inner: PaymentGateway, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._inner = inner
        self._timeout = timeout

    async def authorize(
        self, *, order_id: UUID, amount: Decimal, currency: str, token: str
    ) -> Authorized | Declined:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._inner.authorize(
                    order_id=order_id, amount=amount, currency=currency, token=token
                )
        except TimeoutError as exc:
            raise GatewayUnavailable(f"authorize: no answer within {self._timeout}s") from exc

    async def void(self, authorization_id: str) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._inner.void(authorization_id)
        except TimeoutError as exc:
            raise GatewayUnavailable(f"void: no answer within {self._timeout}s") from exc

    async def release(self, *, order_id: UUID) -> str | None:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._inner.release(order_id=order_id)
        except TimeoutError as exc:
            raise GatewayUnavailable(f"release: no answer within {self._timeout}s") from exc
