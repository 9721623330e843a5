"""Everything the services recorded about one order, fetched concurrently.

The order service must know the order (else ``OrderNotFound``); any other
source that cannot be read becomes a gap in the story, not a failure.
Inventory keeps no per-order record to ask for, so it speaks only through the
order's history and the dead letters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from shopctl.amqp import connected
from shopctl.config import (
    DEFAULT_EMAIL_URL,
    DEFAULT_HTTP_TIMEOUT,
    DEFAULT_INVENTORY_URL,
    DEFAULT_ORDER_URL,
    DEFAULT_PAYMENT_URL,
)
from shopctl.dlq.letters import DeadLetter, for_order, shop_dead_letter_queues
from shopctl.dlq.queues import depth, peek
from shopctl.errors import OrderNotFound, ShopctlError, Unreachable

Json = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ServiceUrls:
    order: str = DEFAULT_ORDER_URL
    inventory: str = DEFAULT_INVENTORY_URL
    payment: str = DEFAULT_PAYMENT_URL
    email: str = DEFAULT_EMAIL_URL


@dataclass(frozen=True, slots=True)
class Story:
    order_id: str
    order: Json
    payment: Json | None = None
    emails: tuple[Json, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()
    gaps: tuple[str, ...] = field(default=())  # sources that could not be read, and why


class _Gap(Exception):
    pass


async def gather_story(
    order_id: str,
    *,
    urls: ServiceUrls,
    amqp_url: str | None,
    token: str | None = None,
    timeout: float = DEFAULT_HTTP_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Story:
    """``token``: an operator's bearer token (the services' APIs need one)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=timeout, transport=transport, headers=headers) as client:
        try:
            order = await _get_json(client, f"{urls.order}/orders/{quote(order_id, safe='')}")
        except _Gap as exc:
            raise Unreachable(f"order service: {exc}") from None
        if not isinstance(order, Mapping):
            raise OrderNotFound(order_id)
        payment, emails, dead_letters = await asyncio.gather(
            _payment(client, urls.payment, order_id),
            _emails(client, urls.email, order_id),
            _dead_letters(amqp_url, order_id),
        )
    gaps = tuple(x for x in (payment, emails, dead_letters) if isinstance(x, str))
    return Story(
        order_id=order_id,
        order=order,
        payment=payment if isinstance(payment, Mapping) else None,
        emails=emails if isinstance(emails, tuple) else (),
        dead_letters=dead_letters if isinstance(dead_letters, tuple) else (),
        gaps=gaps,
    )


async def _payment(client: httpx.AsyncClient, base: str, order_id: str) -> Json | str | None:
    try:
        found = await _get_json(client, f"{base}/payments/{quote(order_id, safe='')}")
    except _Gap as exc:
        return f"payment service: {exc}"
    return found if isinstance(found, Mapping) else None


async def _emails(client: httpx.AsyncClient, base: str, order_id: str) -> tuple[Json, ...] | str:
    try:
        found = await _get_json(client, f"{base}/emails", params={"order_id": order_id})
    except _Gap as exc:
        return f"email service: {exc}"
    if isinstance(found, list):
        return tuple(x for x in found if isinstance(x, Mapping))
    return ()


async def _dead_letters(amqp_url: str | None, order_id: str) -> tuple[DeadLetter, ...] | str:
    if amqp_url is None:
        return ()
    found: list[DeadLetter] = []
    try:
        async with connected(amqp_url, purpose="trace") as connection:
            for queue in shop_dead_letter_queues():
                if (await depth(connection, queue)).messages:
                    found.extend(for_order(await peek(connection, queue), order_id))
    except ShopctlError as exc:
        return f"dead-letter queues: {exc}"
    return tuple(found)


async def _get_json(
    client: httpx.AsyncClient, url: str, params: Mapping[str, str] | None = None
) -> Any | None:
    """The JSON at ``url``; None for a 404; ``_Gap`` when the service cannot say."""
    try:
        response = await client.get(url, params=params)
    except httpx.HTTPError as exc:
        raise _Gap(f"{url} unreachable ({type(exc).__name__})") from exc
    if response.status_code == httpx.codes.NOT_FOUND:
        return None
    if response.is_error:
        raise _Gap(f"{url} answered {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        raise _Gap(f"{url} answered something that is not JSON") from exc
