"""A topology describes a system; names and permissions derive from it."""

import pytest
from events import ConsumerQueue, ServiceSpec, Topology

TOPOLOGY = Topology(
    services=(
        ServiceSpec("shipping", publishes=frozenset({"parcel.shipped", "parcel.lost"})),
        ServiceSpec(
            "billing",
            publishes=frozenset({"invoice.sent"}),
            consumes=frozenset({"parcel.shipped"}),
        ),
    ),
    exchange="logistics",
    broker_user="svc-{service}",
)


def test_retry_queues_are_named_by_delay_and_share_the_service_prefix() -> None:
    queue = ConsumerQueue(service="billing", bindings=frozenset({"parcel.shipped"}))
    assert queue.retry_delays == (1.0, 5.0, 30.0)
    assert queue.retry_queues == (
        "billing.events.retry.1000ms",
        "billing.events.retry.5000ms",
        "billing.events.retry.30000ms",
    )
    assert queue.max_retries == 3
    assert queue.delivery_limit == 20
    for name in (queue.dead_letter_exchange, queue.dead_letter_queue, *queue.retry_queues):
        assert name.startswith("billing.events.")


def test_queues_and_owners_derive_from_the_description() -> None:
    queue = TOPOLOGY.queue("billing", retry_delays=(0.5,), replicas=3)
    assert (queue.name, queue.exchange, queue.bindings) == (
        "billing.events",
        "logistics",
        frozenset({"parcel.shipped"}),
    )
    assert queue.retry_queues == ("billing.events.retry.500ms",)
    assert queue.replicas == 3
    assert [spec.name for spec in TOPOLOGY.consumers] == ["billing"]
    assert TOPOLOGY.consumed_keys == {"parcel.shipped"}
    assert TOPOLOGY.publishers() == {
        "parcel.shipped": "svc-shipping",
        "parcel.lost": "svc-shipping",
        "invoice.sent": "svc-billing",
    }
    assert TOPOLOGY.user_of("billing", prefix="ci_") == "ci_svc-billing"


def test_an_event_type_has_one_owner() -> None:
    with pytest.raises(ValueError, match=r"parcel\.lost is published by"):
        Topology(
            services=(
                ServiceSpec("a", publishes=frozenset({"parcel.lost"})),
                ServiceSpec("b", publishes=frozenset({"parcel.lost"})),
            )
        )
