"""Least privilege, derived from the topology: who may touch which broker resources
and which database. Pure: the appliers in ``rabbitmq``/``postgres`` carry it out.

RabbitMQ checks (access-control guide, AMQP 0-9-1 table):

- ``exchange.declare``/``queue.declare`` → configure on the resource; a queue with a
  dead-letter exchange also needs write on that exchange and read on the queue;
- ``queue.bind`` → write on the queue, read on the exchange; on a topic exchange
  with topic permissions, the binding key must match the topic *read* pattern;
- ``basic.publish`` → write on the exchange; on a topic exchange with topic
  permissions, the routing key must match the topic *write* pattern;
- ``basic.get``/``basic.consume``/``queue.purge`` → read on the queue.

A consuming service declares the ``events`` exchange (idempotently, so configure
on it), its own ``<svc>.events`` queues and ``<svc>.events.dlx`` exchange, binds
them, consumes, and republishes retries and dead letters through its own DLX.
Every name it owns starts with ``<svc>.events.``; nothing of another service does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from events import ServiceSpec, Topology
from shop_contract import SHOP

NOTHING = "^$"
EVERYTHING = ".*"
DEFAULT_VHOST = "/"


@dataclass(frozen=True, slots=True)
class Permission:
    configure: str
    write: str
    read: str


@dataclass(frozen=True, slots=True)
class TopicPermission:
    exchange: str
    write: str
    read: str


@dataclass(frozen=True, slots=True)
class BrokerUser:
    name: str
    service: str
    password_env: str
    permission: Permission
    topic_permissions: tuple[TopicPermission, ...]
    tags: tuple[str, ...] = ()

    @property
    def default_password(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ServiceDatabase:
    service: str
    role: str
    database: str
    password_env: str

    @property
    def default_password(self) -> str:
        return self.role


FULL_ACCESS = Permission(configure=EVERYTHING, write=EVERYTHING, read=EVERYTHING)


def password_env(service: str, kind: str) -> str:
    """``PAYMENT_AMQP_PASSWORD``, ``PAYMENT_DB_PASSWORD``."""
    return f"{re.sub(r'[^A-Z0-9]', '_', service.upper())}_{kind}_PASSWORD"


def any_of(*alternatives: str) -> str:
    """An anchored regex matching exactly one of ``alternatives`` (themselves regexes)."""
    if not alternatives:
        return NOTHING
    return f"^({'|'.join(sorted(set(alternatives)))})$"


def exactly(names: Iterable[str]) -> str:
    return any_of(*(re.escape(name) for name in names))


def own_resources(spec: ServiceSpec, topology: Topology = SHOP) -> str:
    """Regex for the queues and DLX a service owns: ``<svc>.events`` and ``<svc>.events.*``."""
    return rf"{re.escape(topology.queue(spec.name).name)}(\..+)?"


def broker_permission(spec: ServiceSpec, topology: Topology = SHOP) -> Permission:
    exchange = topology.exchange
    events = re.escape(exchange)
    if not spec.consumes:
        # A publish-only service declares the exchange and publishes to it; no queues.
        return Permission(
            configure=any_of(events),
            write=any_of(events) if spec.publishes else NOTHING,
            read=NOTHING,
        )
    own = own_resources(spec, topology)
    return Permission(
        configure=any_of(events, own),  # declare: the exchange, own queues and DLX
        write=any_of(*([events] if spec.publishes else []), own),  # publish; bind own queues
        read=any_of(events, own),  # bind from events and own DLX; consume own queues
    )


def topic_permission(spec: ServiceSpec, topology: Topology = SHOP) -> TopicPermission:
    """Publish only its own event types; bind only to the ones it consumes."""
    return TopicPermission(
        exchange=topology.exchange, write=exactly(spec.publishes), read=exactly(spec.consumes)
    )


def broker_users(topology: Topology = SHOP, *, prefix: str = "") -> list[BrokerUser]:
    return [
        BrokerUser(
            name=topology.user_of(spec.name, prefix=prefix),
            service=spec.name,
            password_env=password_env(spec.name, "AMQP"),
            permission=broker_permission(spec, topology),
            topic_permissions=(topic_permission(spec, topology),),
        )
        for spec in topology.services
    ]


OPERATOR = "operator"
# impersonator: a replayed dead letter is published as the consumer's own user (the
# only one its queue's way back believes); monitoring: queue depths over the API.
OPERATOR_TAGS = ("impersonator", "monitoring")


def operator_user(topology: Topology = SHOP, *, prefix: str = "") -> BrokerUser:
    """The people's account (shopctl tail, dlq, web): all of the vhost, and impersonation."""
    return BrokerUser(
        name=topology.user_of(OPERATOR, prefix=prefix),
        service=OPERATOR,
        password_env=password_env(OPERATOR, "AMQP"),
        permission=FULL_ACCESS,
        topic_permissions=(),
        tags=OPERATOR_TAGS,
    )


def service_databases(topology: Topology = SHOP, *, prefix: str = "") -> list[ServiceDatabase]:
    # The database role and database share the service's broker user name.
    return [
        ServiceDatabase(
            service=spec.name,
            role=topology.user_of(spec.name, prefix=prefix),
            database=topology.user_of(spec.name, prefix=prefix),
            password_env=password_env(spec.name, "DB"),
        )
        for spec in topology.services
    ]


def password_for(account: BrokerUser | ServiceDatabase, environ: Mapping[str, str]) -> str:
    """From the account's environment variable; ``shop_<svc>`` for local development."""
    return environ.get(account.password_env) or account.default_password
