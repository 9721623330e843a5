"""Names on the wire, defined once: the consumer writes these headers, tools read them."""

from __future__ import annotations

from typing import Final

CONTENT_TYPE: Final = "application/json"


class Headers:
    """AMQP header names this library reads or writes."""

    SCHEMA_VERSION: Final = "x-schema-version"
    CAUSATION_ID: Final = "x-causation-id"
    TRACEPARENT: Final = "traceparent"
    TRACESTATE: Final = "tracestate"

    # Set by a consumer on the copies it sends to its own retry queues and DLQ.
    RETRY_COUNT: Final = "x-retry-count"
    LAST_ERROR: Final = "x-last-error"
    ORIGINAL_QUEUE: Final = "x-original-queue"
    ORIGINAL_ROUTING_KEY: Final = "x-original-routing-key"
    ORIGINAL_USER_ID: Final = "x-original-user-id"
    DEAD_LETTER_REASON: Final = "x-dead-letter-reason"
    EXCEPTION: Final = "x-exception"
    EXCEPTION_MESSAGE: Final = "x-exception-message"
    ATTEMPTS: Final = "x-attempts"
    FAILED_AT: Final = "x-failed-at"

    # Set by an operator tool that sends a dead letter back.
    REPLAYED_AT: Final = "x-replayed-at"
    REPLAY_COUNT: Final = "x-replay-count"

    # Set by the broker when it dead-letters (delivery limit, TTL).
    X_DEATH: Final = "x-death"
    DELIVERY_COUNT: Final = "x-delivery-count"

    # What a consumer writes on its own copies: never believed from anyone else.
    CONTROL: Final = frozenset(
        {
            RETRY_COUNT,
            LAST_ERROR,
            ORIGINAL_QUEUE,
            ORIGINAL_ROUTING_KEY,
            ORIGINAL_USER_ID,
            DEAD_LETTER_REASON,
            EXCEPTION,
            EXCEPTION_MESSAGE,
            ATTEMPTS,
            FAILED_AT,
            REPLAYED_AT,
            REPLAY_COUNT,
        }
    )


class DeadLetterReason:
    """Values of ``Headers.DEAD_LETTER_REASON``."""

    PERMANENT_ERROR: Final = "permanent-error"
    RETRIES_EXHAUSTED: Final = "retries-exhausted"
    FORGED: Final = "forged"
