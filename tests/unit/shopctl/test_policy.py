"""Least privilege derived from the topology: exactly what each service needs."""

import re

import pytest
from events import ServiceSpec
from shop_contract import SERVICE_NAMES, SHOP
from shopctl.setup import policy


def matches(pattern: str, name: str) -> bool:
    # RabbitMQ applies permission regexes with re:run semantics (search); ours are anchored.
    return re.search(pattern, name) is not None


def owned_names(service: str) -> list[str]:
    spec = SHOP.queue(service)
    return [
        spec.name,
        spec.dead_letter_exchange,
        spec.dead_letter_queue,
        *(spec.retry_queue(i) for i in range(1, spec.max_retries + 1)),
    ]


@pytest.mark.parametrize("service", sorted(SERVICE_NAMES))
def test_a_service_may_configure_write_and_read_its_own_resources_and_the_exchange(
    service: str,
) -> None:
    permission = policy.broker_permission(SHOP.service(service))
    for name in [*owned_names(service), "events"]:
        assert matches(permission.configure, name), name
        assert matches(permission.write, name), name
        assert matches(permission.read, name), name


@pytest.mark.parametrize("service", sorted(SERVICE_NAMES))
def test_a_service_may_touch_nothing_of_another_service(service: str) -> None:
    permission = policy.broker_permission(SHOP.service(service))
    for other in SERVICE_NAMES:
        if other == service:
            continue
        for name in owned_names(other):
            for pattern in (permission.configure, permission.write, permission.read):
                assert not matches(pattern, name), (service, name)


def test_lookalike_names_are_not_owned() -> None:
    permission = policy.broker_permission(SHOP.service("payment"))
    for name in ("payment.eventsX", "payment.events.", "xpayment.events", "events.x", "amq.topic"):
        assert not matches(permission.configure, name), name


def test_topic_permissions_allow_publishing_only_own_event_types() -> None:
    topic = policy.topic_permission(SHOP.service("payment"))
    assert topic.exchange == "events"
    for key in ("payment.authorized", "payment.declined", "payment.voided"):
        assert matches(topic.write, key)
    for key in ("inventory.reserved", "order.created", "payment.authorizedX", "payment.*", "#"):
        assert not matches(topic.write, key), key


def test_topic_read_is_the_binding_keys_the_service_consumes() -> None:
    topic = policy.topic_permission(SHOP.service("payment"))
    assert matches(topic.read, "order.created")
    assert matches(topic.read, "order.cancelled")
    assert not matches(topic.read, "order.confirmed")
    assert not matches(topic.read, "#")


def test_the_expected_payment_patterns() -> None:
    permission = policy.broker_permission(SHOP.service("payment"))
    assert permission.configure == r"^(events|payment\.events(\..+)?)$"
    assert permission.configure == permission.write == permission.read
    topic = policy.topic_permission(SHOP.service("payment"))
    assert topic.write == r"^(payment\.authorized|payment\.declined|payment\.voided)$"


def test_a_publish_only_service_gets_no_queue_rights() -> None:
    spec = ServiceSpec("audit", publishes=frozenset({"audit.logged"}))
    permission = policy.broker_permission(spec)
    assert matches(permission.write, "events")
    assert not matches(permission.read, "events")
    assert not matches(permission.configure, "audit.events")
    assert policy.topic_permission(spec).read == policy.NOTHING


def test_users_and_databases_are_named_per_service_with_an_optional_prefix() -> None:
    users = policy.broker_users()
    assert [u.name for u in users] == [f"shop_{s}" for s in SERVICE_NAMES]
    assert users[0].password_env == "ORDER_AMQP_PASSWORD"
    databases = policy.service_databases(prefix="t1_")
    assert {(d.role, d.database) for d in databases} == {
        (f"t1_shop_{s}", f"t1_shop_{s}") for s in SERVICE_NAMES
    }
    assert databases[0].password_env == "ORDER_DB_PASSWORD"


def test_passwords_come_from_the_environment_with_a_development_default() -> None:
    user = policy.broker_users()[2]
    assert user.service == "payment"
    assert policy.password_for(user, {}) == "shop_payment"
    assert policy.password_for(user, {"PAYMENT_AMQP_PASSWORD": "s3cret"}) == "s3cret"
    database = policy.service_databases()[2]
    assert policy.password_for(database, {"PAYMENT_AMQP_PASSWORD": "nope"}) == "shop_payment"
    assert policy.password_for(database, {"PAYMENT_DB_PASSWORD": "db"}) == "db"
