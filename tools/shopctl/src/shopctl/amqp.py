"""Short-lived AMQP connections for one command, named so the broker UI shows who it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
from aio_pika.abc import AbstractConnection

from shopctl.config import DEFAULT_CONNECT_TIMEOUT
from shopctl.errors import Unreachable


@asynccontextmanager
async def connected(
    url: str, *, purpose: str, timeout: float = DEFAULT_CONNECT_TIMEOUT
) -> AsyncIterator[AbstractConnection]:
    try:
        connection = await aio_pika.connect(
            url, timeout=timeout, client_properties={"connection_name": f"shopctl {purpose}"}
        )
    except (OSError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
        raise Unreachable(f"cannot connect to the broker: {exc!r}") from exc
    async with connection:
        yield connection
