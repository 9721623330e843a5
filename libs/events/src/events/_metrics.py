"""Prometheus metrics of the messaging layer (served by each service at /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter(
    "events_consumed_total",
    "Deliveries taken from a service queue, by outcome "
    "(handled, duplicate, retried, dead_lettered, requeued).",
    ["queue", "type", "outcome"],
)
PUBLISHED = Counter(
    "events_published_total", "Outbox rows published, by outcome.", ["type", "outcome"]
)
HANDLER_SECONDS = Histogram(
    "event_handler_seconds",
    "Time from the start of handling to the commit of a handled event (the events of"
    " a batch share their batch's time).",
    ["queue", "type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published.")
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unsent_age_seconds", "Age of the oldest unpublished outbox row."
)
DEAD_LETTER_DEPTH = Gauge(
    "dead_letter_queue_depth",
    "Messages waiting in a consumer's dead-letter queue (read from the broker).",
    ["queue"],
)
QUEUE_CONSUMERS = Gauge(
    "consumer_queue_consumers",
    "Consumers attached to a service's queue, as the broker reports (0: nobody consumes).",
    ["queue"],
)
