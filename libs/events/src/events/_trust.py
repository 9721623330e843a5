"""Whether a delivery may be believed, decided before its body is even read.

An event is believed only when the broker vouches that its owner published it
(AMQP ``user_id``, which RabbitMQ checks against the connection's user) and its
routing key, AMQP ``type`` and (checked after decoding) body type agree. A
message coming back through the queue's own dead-letter exchange (a retry, or
an operator's replay) must carry the consumer's own user: nobody else may
publish there, so the original key and publisher it records are ours to trust.
Headers on any other message are the publisher's words, and are not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from events._errors import ForgedMessage
from events._topology import ConsumerQueue
from events._wire import Headers


@dataclass(frozen=True, slots=True)
class Provenance:
    routing_key: str  # the event type its publisher routed it under
    publisher: str  # the broker user that published it (vouched for by the broker)
    retries: int  # retries already made: only our own copies carry a count
    returned: bool  # came back through our own exchange (a retry or a replay)


def provenance(
    *,
    routing_key: str | None,
    message_type: str | None,
    user_id: str | None,
    headers: Mapping[str, Any],
    queue: ConsumerQueue,
    own_user: str | None,
    publishers: Mapping[str, str],
) -> Provenance:
    """Where a delivery comes from; ``ForgedMessage`` if it cannot be believed."""
    returned = routing_key == queue.name
    if returned:
        if own_user is None or user_id != own_user:
            raise ForgedMessage(
                f"came through {queue.dead_letter_exchange} but published by {user_id!r},"
                f" not by this consumer's user {own_user!r}"
            )
        key = _text(headers.get(Headers.ORIGINAL_ROUTING_KEY))
        publisher = _text(headers.get(Headers.ORIGINAL_USER_ID))
        retries = count(headers.get(Headers.RETRY_COUNT), upper=queue.max_retries)
    else:
        key, publisher, retries = routing_key, user_id, 0
    if key is None or key not in queue.bindings:
        raise ForgedMessage(f"routing key {key!r} is not one {queue.name} handles")
    if message_type != key:
        raise ForgedMessage(f"AMQP type {message_type!r} disagrees with routing key {key!r}")
    owner = publishers.get(key)
    if owner is None or publisher != owner:
        raise ForgedMessage(f"{key} published by {publisher!r}; only {owner!r} may publish it")
    return Provenance(key, owner, retries, returned)


def count(value: object, *, upper: int) -> int:
    """A counter from a header, clamped to ``0..upper``; anything but an int counts 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(0, min(value, upper))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
