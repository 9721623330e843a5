from events import SHOP_SERVICES, ConsumerQueue
from events.registry import DEFAULT_REGISTRY


def test_contract_queue_names_and_bindings() -> None:
    assert {spec.queue().name for spec in SHOP_SERVICES.values()} == {
        "order.events",
        "inventory.events",
        "payment.events",
        "email.events",
    }
    inventory = SHOP_SERVICES["inventory"].queue()
    assert inventory.dead_letter_queue == "inventory.events.dlq"
    assert inventory.bindings == {"order.created", "order.confirmed", "order.cancelled"}


def test_retry_queues_are_named_by_delay_and_share_the_service_prefix() -> None:
    queue = ConsumerQueue(service="email", bindings=frozenset({"order.created"}))
    assert queue.retry_delays == (1.0, 5.0, 30.0)
    assert [queue.retry_queue(n) for n in (1, 2, 3)] == [
        "email.events.retry.1000ms",
        "email.events.retry.5000ms",
        "email.events.retry.30000ms",
    ]
    assert queue.max_retries == 3
    assert queue.delivery_limit == 20
    for name in (queue.dead_letter_exchange, queue.dead_letter_queue, queue.retry_queue(1)):
        assert name.startswith("email.events.")


def test_every_published_and_consumed_key_is_a_known_event() -> None:
    for spec in SHOP_SERVICES.values():
        assert spec.consumes <= DEFAULT_REGISTRY.routing_keys
        assert spec.publishes <= DEFAULT_REGISTRY.routing_keys
        assert all(key.startswith(f"{spec.name}.") for key in spec.publishes)
    consumed = set().union(*(s.consumes for s in SHOP_SERVICES.values()))
    published = set().union(*(s.publishes for s in SHOP_SERVICES.values()))
    assert consumed <= published, "nobody consumes an event that nobody publishes"


def test_events_nobody_consumes_are_the_notifications() -> None:
    """These are published without ``mandatory``; every other key must reach a queue."""
    from events.topology import consumed_keys

    published = set().union(*(s.publishes for s in SHOP_SERVICES.values()))
    assert published - consumed_keys() == {"email.sent", "inventory.released", "payment.voided"}
