"""Dead letters as plain values: why they failed, how they group, how a replay looks.

Two kinds of dead letter reach a ``<service>.events.dlq``:

- the consumer's own, with ``x-dead-letter-reason`` (``permanent-error`` or
  ``retries-exhausted``), ``x-exception``, ``x-exception-message``,
  ``x-original-queue``, ``x-attempts``, ``x-failed-at`` and, after retries,
  ``x-retry-count`` / ``x-last-error``;
- the broker's, when a message crashed its consumer past the queue's delivery
  limit: no ``x-exception``, but an ``x-death`` entry with the reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from events import Headers
from shop_contract import SHOP

from shopctl.errors import NotADeadLetterQueue

DLQ_SUFFIX = ".dlq"
# Counters that belong to one trip through the service queue: a replay starts afresh.
RESET_ON_REPLAY = frozenset({Headers.RETRY_COUNT, Headers.DELIVERY_COUNT})
BROKER_DEAD_LETTER = "(broker)"


class IncomingMessage(Protocol):
    """The parts of an AMQP delivery a dead letter is read from (aio-pika's shape)."""

    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> Mapping[str, Any]: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def type(self) -> str | None: ...
    @property
    def routing_key(self) -> str | None: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def timestamp(self) -> datetime | None: ...
    @property
    def user_id(self) -> str | None: ...


def shop_dead_letter_queues() -> list[str]:
    """Every DLQ the topology implies, in a stable order."""
    return [SHOP.queue(spec.name).dead_letter_queue for spec in SHOP.consumers]


def resolve_queue(name: str) -> str:
    """Let the operator say ``payment`` for ``payment.events.dlq``."""
    if name in {spec.name for spec in SHOP.consumers}:
        return SHOP.queue(name).dead_letter_queue
    return name


def consumer_user(dead_letter_queue: str, *, prefix: str = "") -> str:
    """The broker user of the service that consumes the DLQ's source queue."""
    service = source_queue(dead_letter_queue).removesuffix(".events")
    return SHOP.user_of(service, prefix=prefix)


def source_queue(dead_letter_queue: str) -> str:
    """``payment.events.dlq`` → ``payment.events``: where its messages came from."""
    if not dead_letter_queue.endswith(DLQ_SUFFIX) or len(dead_letter_queue) == len(DLQ_SUFFIX):
        raise NotADeadLetterQueue(dead_letter_queue)
    return dead_letter_queue.removesuffix(DLQ_SUFFIX)


def dead_letter_exchange(queue: str) -> str:
    """The direct exchange a consumer queue owns; key ``queue`` routes back into it."""
    return f"{queue}.dlx"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    queue: str
    position: int  # 0 = head of the queue when it was read
    body: bytes
    headers: Mapping[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    correlation_id: str | None = None
    event_type: str | None = None
    routing_key: str | None = None
    content_type: str | None = None
    timestamp: datetime | None = None
    user_id: str | None = None  # who published this copy (the broker vouches)

    @classmethod
    def from_message(cls, queue: str, position: int, message: IncomingMessage) -> DeadLetter:
        return cls(
            queue=queue,
            position=position,
            body=bytes(message.body),
            headers=plain(dict(message.headers or {})),
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            event_type=message.type,
            routing_key=message.routing_key,
            content_type=message.content_type,
            timestamp=message.timestamp,
            user_id=message.user_id,
        )

    @property
    def _death(self) -> Mapping[str, Any]:
        deaths = self.headers.get(Headers.X_DEATH)
        if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
            return deaths[0]
        return {}

    @property
    def reason(self) -> str:
        reason = self.headers.get(Headers.DEAD_LETTER_REASON) or self._death.get("reason")
        return str(reason) if reason else "unknown"

    @property
    def exception(self) -> str:
        exception = self.headers.get(Headers.EXCEPTION)
        return str(exception) if exception else BROKER_DEAD_LETTER

    @property
    def exception_message(self) -> str:
        return str(self.headers.get(Headers.EXCEPTION_MESSAGE) or "")

    @property
    def original_queue(self) -> str | None:
        queue = self.headers.get(Headers.ORIGINAL_QUEUE) or self._death.get("queue")
        return str(queue) if queue else None

    @property
    def original_routing_key(self) -> str | None:
        key = self.headers.get(Headers.ORIGINAL_ROUTING_KEY)
        keys = self._death.get("routing-keys")
        if not key and isinstance(keys, list) and keys:
            key = keys[0]  # dead-lettered by the broker itself
        return str(key) if key else self.event_type

    @property
    def attempts(self) -> int | None:
        return _int(self.headers.get(Headers.ATTEMPTS))

    @property
    def retry_count(self) -> int:
        return _int(self.headers.get(Headers.RETRY_COUNT)) or 0

    @property
    def last_error(self) -> str | None:
        error = self.headers.get(Headers.LAST_ERROR)
        return str(error) if error else None

    @property
    def replay_count(self) -> int:
        return _int(self.headers.get(Headers.REPLAY_COUNT)) or 0

    @property
    def replayed_at(self) -> datetime | None:
        return parse_time(self.headers.get(Headers.REPLAYED_AT))

    @property
    def failed_at(self) -> datetime | None:
        return (
            parse_time(self.headers.get(Headers.FAILED_AT))
            or parse_time(self._death.get("time"))
            or parse_time(self.timestamp)
        )

    def body_json(self) -> Any | None:
        """The body as JSON, secrets masked (a sealed card token is only ever shown so)."""
        try:
            return redacted(json.loads(self.body))
        except ValueError:
            return None

    @property
    def occurred_at(self) -> datetime | None:
        """When the event happened (the envelope's time; else when it was published)."""
        body = self.body_json()
        when = body.get("occurred_at") if isinstance(body, dict) else None
        return parse_time(when) or parse_time(self.timestamp)

    def too_old_to_replay(self, *, now: datetime, inbox_retention: timedelta) -> bool:
        """The consumers have forgotten whether they handled it: a replay could act twice.
        Unknown age counts as too old."""
        when = self.occurred_at
        return when is None or now - when > inbox_retention

    @property
    def order_id(self) -> str | None:
        """The correlation id, or the envelope's when the properties were lost."""
        if self.correlation_id:
            return self.correlation_id
        body = self.body_json()
        if isinstance(body, dict) and isinstance(body.get("correlation_id"), str):
            return str(body["correlation_id"])
        return None


@dataclass(frozen=True, slots=True)
class Group:
    """Dead letters that failed the same way."""

    exception: str
    reason: str
    count: int
    event_types: tuple[str, ...]
    example: str


def group(letters: Iterable[DeadLetter]) -> list[Group]:
    """Group by (exception, reason), largest group first, ties by name."""
    members: dict[tuple[str, str], list[DeadLetter]] = {}
    for letter in letters:
        members.setdefault((letter.exception, letter.reason), []).append(letter)
    groups = [
        Group(
            exception=exception,
            reason=reason,
            count=len(found),
            event_types=tuple(
                t for t, _ in Counter(x.event_type or "?" for x in found).most_common()
            ),
            example=next((x.exception_message for x in found if x.exception_message), ""),
        )
        for (exception, reason), found in members.items()
    ]
    return sorted(groups, key=lambda g: (-g.count, g.exception, g.reason))


def replay_headers(letter: DeadLetter, *, replayed_at: datetime) -> dict[str, Any]:
    """Headers for a replayed copy: a fresh retry budget, and a note that it was replayed.

    The consumer checks a replayed event again: under which key, and by whom, it was
    first published (the broker's own dead letters keep those only in properties).
    """
    headers = letter.headers
    replayed = {k: v for k, v in headers.items() if k not in RESET_ON_REPLAY}
    replayed.setdefault(Headers.ORIGINAL_ROUTING_KEY, letter.original_routing_key or "")
    replayed.setdefault(Headers.ORIGINAL_USER_ID, letter.user_id or "")
    replayed[Headers.REPLAY_COUNT] = (_int(headers.get(Headers.REPLAY_COUNT)) or 0) + 1
    replayed[Headers.REPLAYED_AT] = replayed_at.isoformat()
    return replayed


def for_order(letters: Sequence[DeadLetter], order_id: str) -> list[DeadLetter]:
    return [letter for letter in letters if letter.order_id == order_id]


SECRET_FIELDS = ("payment_token",)  # any field whose name contains one of these
MASK = "<sealed for the payment service>"


def redacted(value: Any) -> Any:
    """``value`` with every secret field's value replaced by ``MASK``."""
    if isinstance(value, dict):
        return {
            k: MASK if any(s in str(k) for s in SECRET_FIELDS) else redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """AMQP header values as JSON-friendly Python (bytes → str, datetime → ISO)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """What ``dlq list`` shows for one queue."""

    queue: str
    depth: int | None  # None: the queue does not exist
    groups: tuple[Group, ...] = ()
    read: int = 0  # how many messages the groups were built from
