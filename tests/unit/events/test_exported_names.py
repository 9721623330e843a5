"""The library's public surface, pinned: a change here is a change users feel."""

import events
import events.testing


def test_the_exported_names_are_exactly_these() -> None:
    assert set(events.__all__) == {
        "MIGRATIONS",
        "DEFAULT_INBOX_RETENTION",
        "DEFAULT_OUTBOX_RETENTION",
        "Housekeeper",
        "AmqpPublisher",
        "Broker",
        "ConsumerQueue",
        "DeadLetterReason",
        "Envelope",
        "Event",
        "EventConsumer",
        "EventRegistry",
        "EventsError",
        "ForgedMessage",
        "Handler",
        "Headers",
        "MalformedMessage",
        "OutboxRelay",
        "PermanentError",
        "PublishError",
        "Publisher",
        "ServiceSpec",
        "Topology",
        "Transaction",
        "UnknownEventType",
        "configure_logging",
        "create_messaging_tables",
        "declare_exchange",
        "declare_queue",
        "handle_delivery",
        "message_for",
        "trace_headers",
        "transaction",
    }
    assert len(events.__all__) == len(set(events.__all__))
    assert set(events.testing.__all__) == {
        "Delivery",
        "FakeUnitOfWork",
        "deliver",
        "deliver_batch",
        "outbox_events",
    }


def test_every_exported_name_resolves() -> None:
    for name in events.__all__:
        assert getattr(events, name) is not None, name


def test_everything_else_lives_in_private_modules() -> None:
    public = {name for name in vars(events) if not name.startswith("_")}
    # Submodules appear as attributes once imported; all of ours are private or testing.
    modules = {name for name in public if name not in events.__all__}
    assert modules <= {"annotations", "importlib", "testing", "TYPE_CHECKING", "Any"}
