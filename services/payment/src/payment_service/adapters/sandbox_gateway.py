"""An in-process sandbox standing in for an external payment gateway.

Rules, by card token (see the contract):

- ``tok_chargeDeclined``    → declined, "card declined"
- ``tok_insufficientFunds`` → declined, "insufficient funds"
- ``tok_gatewayTimeout``    → ``GatewayUnavailable`` on the first two calls for an
  order, authorized on the third and after, whatever the amount (so the consumer's
  retries are exercised)
- ``tok_gatewayTimeoutAfterAuth`` → the first call authorizes, then times out on our
  side (``GatewayUnavailable``): an authorization we never saw; later calls for the
  order return that same authorization (the idempotency key)
- any other token           → authorized, unless the amount exceeds the limit:
  declined, "amount exceeds limit"

What it remembers (attempts per order, authorizations) is the *external system's*
state: it lives in this object, in memory, so it survives the handler's
transaction rolling back, and it resets when the process restarts (the sandbox
then forgets its authorizations, and tok_gatewayTimeout fails twice again).
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

from payment_service.adapters.gateway import Authorized, Declined, GatewayUnavailable

DECLINED_TOKENS = {
    "tok_chargeDeclined": "card declined",
    "tok_insufficientFunds": "insufficient funds",
}
FLAKY_TOKEN = "tok_gatewayTimeout"  # noqa: S105 (a sandbox card token, not a secret)
FLAKY_FAILURES = 2
LOST_ANSWER_TOKEN = "tok_gatewayTimeoutAfterAuth"  # noqa: S105 (a sandbox card token)
OVER_LIMIT = "amount exceeds limit"
DEFAULT_AMOUNT_LIMIT = Decimal("10000.00")


class SandboxGateway:
    def __init__(self, *, amount_limit: Decimal = DEFAULT_AMOUNT_LIMIT) -> None:
        self._amount_limit = amount_limit
        self._attempts: dict[UUID, int] = {}
        # Like a real gateway's idempotency key: authorizing an order again (say,
        # after our commit failed) returns the same authorization, not a second hold.
        self._authorizations: dict[UUID, str] = {}
        self._voided: set[str] = set()

    def attempts(self, order_id: UUID) -> int:
        return self._attempts.get(order_id, 0)

    def is_voided(self, authorization_id: str) -> bool:
        return authorization_id in self._voided

    def holds(self) -> dict[UUID, str]:
        """Authorizations not voided, by order: what a customer's card still carries."""
        return {o: a for o, a in self._authorizations.items() if a not in self._voided}

    async def authorize(
        self, *, order_id: UUID, amount: Decimal, currency: str, token: str
    ) -> Authorized | Declined:
        attempt = self._attempts[order_id] = self.attempts(order_id) + 1
        if token in DECLINED_TOKENS:
            return Declined(DECLINED_TOKENS[token])
        if token == FLAKY_TOKEN:
            if attempt <= FLAKY_FAILURES:
                raise GatewayUnavailable(f"sandbox: simulated timeout (attempt {attempt})")
        elif amount > self._amount_limit:
            return Declined(OVER_LIMIT)
        authorization_id = self._authorizations.setdefault(order_id, f"auth_{uuid4().hex}")
        if token == LOST_ANSWER_TOKEN and attempt == 1:
            raise GatewayUnavailable("sandbox: authorized, but the answer was lost (timeout)")
        return Authorized(authorization_id)

    async def void(self, authorization_id: str) -> None:
        # Unknown ids are accepted: after a restart the sandbox has forgotten them.
        self._voided.add(authorization_id)

    async def release(self, *, order_id: UUID) -> str | None:
        authorization_id = self._authorizations.get(order_id)
        if authorization_id is None or authorization_id in self._voided:
            return None
        self._voided.add(authorization_id)
        return authorization_id
