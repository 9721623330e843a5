"""Who publishes and who consumes what, as hashable value objects (no I/O here).

A system describes itself once as a ``Topology``; queues, bindings, broker
permissions and the trust check on every delivery are all derived from it.
For a consuming service ``svc`` the queue ``svc.events`` (quorum) is bound to
the topic exchange with exactly the keys it handles. Each such queue owns a
direct exchange ``svc.events.dlx`` that routes three ways::

    key ``svc.events``            → ``svc.events``          (retries coming back, replays)
    key ``svc.events.retry.<n>ms``→ ``svc.events.retry.<n>ms`` (TTL n; dead-letters back)
    key ``svc.events.dlq``        → ``svc.events.dlq``       (dead letters)

Delayed retries therefore need no broker plugin, and every name a service touches
starts with its own prefix, which keeps its permissions narrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_EXCHANGE = "events"
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 5.0, 30.0)
# RabbitMQ 3.10 has no default delivery limit (4.x defaults to 20): without one,
# a message that crashes its consumer would be redelivered forever.
DEFAULT_DELIVERY_LIMIT = 20


@dataclass(frozen=True, slots=True)
class ConsumerQueue:
    """One consuming service's queue and everything around it."""

    service: str
    bindings: frozenset[str]
    exchange: str = DEFAULT_EXCHANGE
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT
    # Quorum members to create the queue with; None: the broker's default (all nodes).
    replicas: int | None = None

    @property
    def name(self) -> str:
        return f"{self.service}.events"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.name}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dlq"

    def retry_queue(self, attempt: int) -> str:
        """The retry queue for the ``attempt``-th retry (1-based)."""
        return f"{self.name}.retry.{to_ms(self.retry_delays[attempt - 1])}ms"

    @property
    def retry_queues(self) -> tuple[str, ...]:
        return tuple(self.retry_queue(n) for n in range(1, self.max_retries + 1))

    @property
    def max_retries(self) -> int:
        return len(self.retry_delays)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One service's place in the system: what it may publish and what it consumes."""

    name: str
    publishes: frozenset[str] = field(default_factory=frozenset)
    consumes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Topology:
    """The one description of a system's event flow.

    ``broker_user`` is the pattern of each service's broker user (``{service}``
    is replaced by its name); a consumer believes an event only when the broker
    says the owning service's user published it.
    """

    services: tuple[ServiceSpec, ...]
    exchange: str = DEFAULT_EXCHANGE
    broker_user: str = "{service}"

    def __post_init__(self) -> None:
        owners: dict[str, str] = {}
        for spec in self.services:
            for key in spec.publishes:
                if key in owners:
                    raise ValueError(f"{key} is published by {owners[key]} and {spec.name}")
                owners[key] = spec.name
        names = [spec.name for spec in self.services]
        if len(set(names)) != len(names):
            raise ValueError(f"service names repeat: {names}")

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(f"no service {name!r} in the topology")

    @property
    def consumers(self) -> tuple[ServiceSpec, ...]:
        return tuple(spec for spec in self.services if spec.consumes)

    def owner_of(self, routing_key: str) -> ServiceSpec | None:
        return next((spec for spec in self.services if routing_key in spec.publishes), None)

    def user_of(self, service: str, *, prefix: str = "") -> str:
        return prefix + self.broker_user.format(service=service)

    def publishers(self, *, prefix: str = "") -> dict[str, str]:
        """Routing key → the broker user allowed to publish it."""
        return {
            key: self.user_of(spec.name, prefix=prefix)
            for spec in self.services
            for key in spec.publishes
        }

    @property
    def consumed_keys(self) -> frozenset[str]:
        """Routing keys at least one service consumes: these must never go unrouted."""
        return frozenset(key for spec in self.services for key in spec.consumes)

    def queue(
        self,
        service: str,
        *,
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        replicas: int | None = None,
    ) -> ConsumerQueue:
        return ConsumerQueue(
            service=service,
            bindings=self.service(service).consumes,
            exchange=self.exchange,
            retry_delays=retry_delays,
            delivery_limit=delivery_limit,
            replicas=replicas,
        )


def to_ms(seconds: float) -> int:
    return round(seconds * 1000)
