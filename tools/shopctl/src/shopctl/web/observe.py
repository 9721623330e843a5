"""What one message seen by the web tap means: an event, a retry, a dead letter, a replay.

The tap's queue is bound to the ``events`` exchange (every event) and to each
consumer's ``<svc>.events.dlx`` (its retries, dead letters and replays). The
routing key tells which: event types (``order.created``) and queue names
(``payment.events.retry.1000ms``, ``payment.events.dlq``, ``payment.events``)
never overlap.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from events import ConsumerQueue, Headers, Topology
from shop_contract import SHOP

from shopctl.dlq.letters import DeadLetter, IncomingMessage, parse_time
from shopctl.services import producer_of
from shopctl.tail.lines import TailEvent

DETAIL_LIMIT = 300


class Kind(enum.StrEnum):
    EVENT = "event"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True)
class Observation:
    kind: Kind
    received_at: datetime
    event_type: str
    order_id: str | None
    event_id: str | None
    service: str  # an event's owner; the consumer that retried, dead-lettered or got a replay
    publisher: str | None  # the AMQP user_id, which the broker vouches for
    expected_publisher: str | None  # who the topology says should have published it
    queue: str | None = None  # the consumer queue a retry, dead letter or replay is about
    detail: str = ""  # why: a retry's error, a dead letter's reason and exception
    problem: str | None = None  # set when the body is not an event envelope
    occurred_at: datetime | None = None

    @property
    def trusted(self) -> bool:
        return self.publisher is not None and self.publisher == self.expected_publisher


def observe(
    message: IncomingMessage,
    *,
    received_at: datetime,
    prefix: str = "",
    topology: Topology = SHOP,
) -> Observation | None:
    """None for what the timeline leaves out: a retry coming back from its wait
    (its retry was shown when it was scheduled) and anything unrecognised."""
    key = message.routing_key or ""
    for spec in topology.consumers:
        queue = topology.queue(spec.name)
        if key == queue.dead_letter_queue:
            return _dead_letter(
                message, queue, received_at, topology.user_of(spec.name, prefix=prefix)
            )
        if key.startswith(f"{queue.name}.retry."):
            return _retry(message, queue, received_at, topology.user_of(spec.name, prefix=prefix))
        if key == queue.name:
            return _returned(
                message, queue, received_at, topology.user_of(spec.name, prefix=prefix)
            )
    return _event(message, received_at, prefix, topology)


def _event(
    message: IncomingMessage, received_at: datetime, prefix: str, topology: Topology
) -> Observation:
    event = TailEvent.decode(
        message.body,
        routing_key=message.routing_key or "",
        received_at=received_at,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        message_type=message.type,
    )
    owner = topology.owner_of(event.routing_key)
    return Observation(
        kind=Kind.EVENT,
        received_at=received_at,
        event_type=event.event_type,
        order_id=event.order_id,
        event_id=event.event_id,
        service=owner.name if owner else producer_of(event.routing_key),
        publisher=message.user_id,
        expected_publisher=topology.user_of(owner.name, prefix=prefix) if owner else None,
        problem=event.problem,
        occurred_at=event.occurred_at,
    )


def _retry(
    message: IncomingMessage, queue: ConsumerQueue, received_at: datetime, own_user: str
) -> Observation:
    headers = message.headers or {}
    wait = (message.routing_key or "").rsplit(".", 1)[-1]  # "1000ms"
    attempt = headers.get(Headers.RETRY_COUNT, "?")
    error = headers.get(Headers.LAST_ERROR) or "handler failed"
    return _about_queue(
        Kind.RETRY,
        message,
        queue,
        received_at,
        own_user,
        detail=_short(f"retry {attempt} in {_wait(wait)}: {error}"),
    )


def _dead_letter(
    message: IncomingMessage, queue: ConsumerQueue, received_at: datetime, own_user: str
) -> Observation:
    letter = DeadLetter.from_message(queue.dead_letter_queue, 0, message)
    why = f"{letter.reason}: {letter.exception}"
    if letter.exception_message:
        why += f": {letter.exception_message}"
    return Observation(
        kind=Kind.DEAD_LETTER,
        received_at=received_at,
        event_type=letter.event_type or letter.original_routing_key or "?",
        order_id=letter.order_id,
        event_id=letter.message_id,
        service=queue.service,
        publisher=letter.user_id,
        expected_publisher=own_user,
        queue=queue.dead_letter_queue,
        detail=_short(why),
        occurred_at=letter.occurred_at,
    )


def _returned(
    message: IncomingMessage, queue: ConsumerQueue, received_at: datetime, own_user: str
) -> Observation | None:
    headers = message.headers or {}
    # A retry whose wait is over carries its count (shown when it was scheduled); a
    # replay has none, as its budget starts afresh, but may keep an old x-death.
    if Headers.RETRY_COUNT in headers or Headers.REPLAYED_AT not in headers:
        return None
    count = headers.get(Headers.REPLAY_COUNT, 1)
    return _about_queue(
        Kind.REPLAY,
        message,
        queue,
        received_at,
        own_user,
        detail=f"replayed from {queue.dead_letter_queue} (replay {count})",
        occurred_at=parse_time(headers.get(Headers.REPLAYED_AT)),
    )


def _about_queue(
    kind: Kind,
    message: IncomingMessage,
    queue: ConsumerQueue,
    received_at: datetime,
    own_user: str,
    *,
    detail: str,
    occurred_at: datetime | None = None,
) -> Observation:
    """A retry or a replay: an event on its way back to one consumer's queue."""
    return Observation(
        kind=kind,
        received_at=received_at,
        event_type=_event_type(message),
        order_id=message.correlation_id,
        event_id=message.message_id,
        service=queue.service,
        publisher=message.user_id,
        expected_publisher=own_user,
        queue=queue.name,
        detail=detail,
        occurred_at=occurred_at,
    )


def _event_type(message: IncomingMessage) -> str:
    original = (message.headers or {}).get(Headers.ORIGINAL_ROUTING_KEY)
    return message.type or (str(original) if original else "?")


def _wait(suffix: str) -> str:
    """``1000ms`` → ``1s``; anything unexpected is shown as it is."""
    if suffix.endswith("ms") and suffix[:-2].isdigit():
        return f"{int(suffix[:-2]) / 1000:g}s"
    return suffix


def _short(text: str) -> str:
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"
