"""Publishing with publisher confirms, ``mandatory`` and a timeout on every publish."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Protocol

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from events._broker import Broker
from events._declare import declare_exchange
from events._errors import PublishError
from events._topology import DEFAULT_EXCHANGE

DEFAULT_PUBLISH_TIMEOUT = 5.0


class Publisher(Protocol):
    @property
    def user_id(self) -> str | None:
        """The broker user messages are published as (their AMQP ``user_id``)."""

    async def publish(self, routing_key: str, message: aio_pika.Message) -> None:
        """Return once the broker has confirmed; raise ``PublishError`` otherwise."""


class AmqpPublisher:
    """Publishes to a topic exchange on a confirm channel of ``broker``.

    Every message carries ``user_id`` = the connection's user, which the broker
    verifies: consumers can then trust who published it.

    ``must_route``: routing keys that some queue must receive (published with
    ``mandatory``; a return is a failure and the outbox row stays unsent until a
    consumer's queue exists). Other keys are notifications for whoever listens.
    ``None``: every key.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        exchange: str = DEFAULT_EXCHANGE,
        timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        must_route: Collection[str] | None = None,
    ) -> None:
        self._broker = broker
        self._must_route = None if must_route is None else frozenset(must_route)
        self._exchange_name = exchange
        self._timeout = timeout
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        broker.on_connect(self._open)

    @property
    def user_id(self) -> str | None:
        return self._broker.user

    async def _open(self, connection: AbstractConnection) -> None:
        # on_return_raises: an unroutable message is a failure, not a silent loss.
        self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await declare_exchange(self._channel, self._exchange_name)

    async def publish(self, routing_key: str, message: aio_pika.Message) -> None:
        if self._channel is None or self._channel.is_closed:
            # A channel can close alone (e.g. a broker-side error); reopen it while
            # the connection is up, and fail fast while it is not.
            if not self._broker.is_ready:
                raise PublishError("not connected to the broker")
            await self._open(await self._broker.connection())
        exchange = self._exchange
        if exchange is None:
            raise PublishError("no channel to publish on")
        try:
            mandatory = self._must_route is None or routing_key in self._must_route
            await exchange.publish(message, routing_key, mandatory=mandatory, timeout=self._timeout)
        except TimeoutError as exc:
            raise PublishError(f"no confirm within {self._timeout}s") from exc
        except asyncio.CancelledError as exc:
            # aiormq cancels pending confirms when the connection drops; only a
            # cancellation of our own task is a real one.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise PublishError("connection lost before the broker confirmed") from exc
        except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
            raise PublishError(f"publish of {routing_key} failed: {exc!r}") from exc
