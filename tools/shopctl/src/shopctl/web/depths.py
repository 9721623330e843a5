"""Which queues the page counts, and how the counts read per service (no I/O here).

Counts come from passive queue declares over AMQP (see ``broker``), which every
broker answers: the management plugin may be absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from events import Topology
from shop_contract import SHOP


@dataclass(frozen=True, slots=True)
class QueueCount:
    messages: int
    consumers: int


@dataclass(frozen=True, slots=True)
class ServiceQueues:
    service: str
    main: str
    retries: tuple[str, ...]
    dead_letters: str

    @property
    def names(self) -> tuple[str, ...]:
        """The main queue first: the service declares all of them together, so when
        it is missing the others are too and need not be asked for."""
        return (self.main, *self.retries, self.dead_letters)


def watched_queues(topology: Topology = SHOP) -> list[ServiceQueues]:
    queues = []
    for spec in topology.consumers:
        queue = topology.queue(spec.name)
        queues.append(
            ServiceQueues(spec.name, queue.name, queue.retry_queues, queue.dead_letter_queue)
        )
    return queues


def depths_json(
    watched: list[ServiceQueues], counts: Mapping[str, QueueCount | None]
) -> list[dict[str, Any]]:
    """One row per service; ``None`` counts mean the queue does not exist (yet)."""
    rows = []
    for service in watched:
        main = counts.get(service.main)
        if main is None:
            rows.append({"service": service.service, "queue": service.main, "missing": True})
            continue
        retrying = [counts.get(name) for name in service.retries]
        dead = counts.get(service.dead_letters)
        rows.append(
            {
                "service": service.service,
                "queue": service.main,
                "missing": False,
                "ready": main.messages,
                "consumers": main.consumers,
                "retrying": sum(c.messages for c in retrying if c is not None),
                "dead_letter_queue": service.dead_letters,
                "dead_letters": dead.messages if dead is not None else None,
            }
        )
    return rows
