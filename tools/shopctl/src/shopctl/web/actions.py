"""What the page's buttons do, on the page's backend: place a demo order as a customer,
list and replay dead letters as the operator.

Tokens are signed here with the development key (``shopctl keys``), exactly as
``shopctl token`` signs them, for one call each: the browser sees neither the key
nor a token. Where there is no key, a person may paste a customer token of their
own (``shopctl token --customer ID`` on a machine that has one) into the form; it
is passed on for that one call and kept nowhere. Replays reuse ``shopctl dlq
replay``'s code.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from events import DEFAULT_INBOX_RETENTION

from shopctl.amqp import connected
from shopctl.dlq import queues as dlq_queues
from shopctl.dlq.letters import DeadLetter, consumer_user, shop_dead_letter_queues
from shopctl.errors import ShopctlError
from shopctl.keys import KeyFiles, customer_token, operator_token, read_signing_key
from shopctl.web import labels

TOKEN_TTL = 60  # seconds: each token is made for one call
PEEK_LIMIT = 200
DEMO_PAYMENT_TOKENS = (
    "tok_visa",
    "tok_chargeDeclined",
    "tok_insufficientFunds",
    "tok_gatewayTimeout",
    "tok_gatewayTimeoutAfterAuth",
)
MAX_QUANTITY = 1000


class NotAllowed(ShopctlError):
    """The backend has no identity for this (no signing key, no operator token)."""


class BadRequest(ShopctlError):
    """What the page sent cannot be acted on."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Whom the backend acts as: a customer (demo orders), the operator (replays)."""

    secrets: Path
    operator: str | None = None  # an operator's token given outright (SHOPCTL_TOKEN)

    def _signing_key(self) -> str:
        return read_signing_key(KeyFiles(self.secrets).auth_signing)

    def customer_token(self, customer_id: str) -> str:
        try:
            return customer_token(self._signing_key(), customer_id, ttl=TOKEN_TTL)
        except ShopctlError as exc:
            raise NotAllowed(
                f"demo orders need a customer token: {exc}; or paste one"
                " (`shopctl token --customer ID`) into the form"
            ) from exc

    def operator_token(self) -> str:
        if self.operator:
            return self.operator
        try:
            return operator_token(self._signing_key(), ttl=TOKEN_TTL)
        except ShopctlError as exc:
            raise NotAllowed(
                f"replaying acts as the operator and needs an operator token: {exc};"
                " or start `shopctl web` with --token / SHOPCTL_TOKEN"
            ) from exc

    def capabilities(self) -> dict[str, Any]:
        """What the page may offer, and why not when it may not."""
        return {
            "orders": _capability(lambda: self.customer_token("capability-check")),
            "replay": _capability(self.operator_token),
        }


def _capability(check: Callable[[], object]) -> dict[str, Any]:
    try:
        check()
    except NotAllowed as exc:
        return {"ok": False, "why": str(exc)}
    return {"ok": True, "why": None}


@dataclass(frozen=True, slots=True)
class DemoOrder:
    customer_id: str
    email: str
    sku: str
    quantity: int
    payment_token: str
    token: str | None = None  # a customer token the person gave; else one is signed here

    @classmethod
    def parse(cls, data: Any) -> DemoOrder:
        """From the page's form; the order service judges the rest (422 naming the field)."""
        if not isinstance(data, Mapping):
            raise BadRequest("expected a JSON object")
        text = {}
        for name in ("customer_id", "email", "sku", "payment_token"):
            value = data.get(name)
            if not isinstance(value, str) or not value.strip():
                raise BadRequest(f"{name} is required")
            text[name] = value.strip()
        quantity = data.get("quantity", 1)
        if isinstance(quantity, str) and quantity.strip().isdigit():
            quantity = int(quantity)
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise BadRequest("quantity must be a whole number")
        if not 1 <= quantity <= MAX_QUANTITY:
            raise BadRequest(f"quantity must be between 1 and {MAX_QUANTITY}")
        token = data.get("token")
        if token is not None and not isinstance(token, str):
            raise BadRequest("token must be text")
        token = _bearer(token or "")
        return cls(quantity=quantity, token=token or None, **text)

    def body(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "email": self.email,
            "items": [{"sku": self.sku, "quantity": self.quantity}],
            "payment_token": self.payment_token,
        }


async def place_order(
    client: httpx.AsyncClient, order_url: str, identity: Identity, order: DemoOrder
) -> tuple[int, Any]:
    """POST /orders as the order's customer; the order service's status and JSON answer."""
    token = order.token or identity.customer_token(order.customer_id)
    headers = {
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": f"shopctl-web-{uuid.uuid4()}",
    }
    try:
        response = await client.post(f"{order_url}/orders", json=order.body(), headers=headers)
    except httpx.HTTPError as exc:
        raise ShopctlError(f"the order service at {order_url} is unreachable: {exc!r}") from exc
    try:
        answer = response.json()
    except ValueError:
        answer = {"detail": response.text[:500]}
    return response.status_code, answer


def _bearer(text: str) -> str:
    """A pasted token, without the ``Bearer`` a person may have copied along."""
    text = text.strip()
    if text[:7].lower() == "bearer ":
        text = text[7:].strip()
    if any(c.isspace() or not c.isprintable() for c in text):
        raise BadRequest("the token must be one word (as `shopctl token` prints it)")
    return text


async def products(client: httpx.AsyncClient, order_url: str) -> Any:
    try:
        response = await client.get(f"{order_url}/products")
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ShopctlError(f"the order service at {order_url} is unreachable: {exc!r}") from exc


def letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "queue": letter.queue,
        "position": letter.position,
        "message_id": letter.message_id,
        "short_id": labels.short_id(letter.message_id),
        "event_type": letter.event_type or letter.original_routing_key,
        "order_id": letter.order_id,
        "reason": letter.reason,
        "exception": letter.exception,
        "exception_message": letter.exception_message,
        "failed_at_label": labels.clock(letter.failed_at) if letter.failed_at else "-",
        "attempts": letter.attempts,
        "replays": letter.replay_count,
    }


async def dead_letters(amqp_url: str) -> list[dict[str, Any]]:
    """Every letter in every DLQ, peeked (each stays in its queue, in its place)."""
    found: list[dict[str, Any]] = []
    async with connected(amqp_url, purpose="web dlq") as connection:
        for queue in shop_dead_letter_queues():
            if not (await dlq_queues.depth(connection, queue)).messages:
                continue
            letters = await dlq_queues.peek(connection, queue, limit=PEEK_LIMIT)
            found.extend(letter_json(letter) for letter in letters)
    return found


async def replay(
    amqp_url: str,
    identity: Identity,
    *,
    queue: str,
    message_id: str,
    prefix: str = "",
    inbox_retention: timedelta = DEFAULT_INBOX_RETENTION,
) -> dlq_queues.ReplayResult:
    """One dead letter back to its queue, as ``shopctl dlq replay --message-id`` does."""
    identity.operator_token()  # the operator's act: refused without an operator identity
    if queue not in shop_dead_letter_queues():
        raise BadRequest(f"{queue!r} is not one of the shop's dead-letter queues")
    async with connected(amqp_url, purpose="web dlq replay") as connection:
        return await dlq_queues.replay(
            connection,
            queue,
            as_user=consumer_user(queue, prefix=prefix),
            inbox_retention=inbox_retention,
            message_id=message_id,
        )
