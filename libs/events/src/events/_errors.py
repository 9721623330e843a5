"""Every exception this library raises, in one place.

Handlers signal outcomes with exceptions; the consumer maps them to ack/retry/DLQ:

- ``PermanentError`` (and subclasses): the message can never succeed → DLQ at once.
- any other ``Exception``: transient → delayed retry, DLQ once the budget is spent.
"""


class EventsError(Exception):
    """Base class of this library's errors."""


class PermanentError(EventsError):
    """Retrying cannot help: the message goes to the dead-letter queue at once."""


class MalformedMessage(PermanentError):
    """The body is not a JSON envelope, or the data violates the event's schema."""


class ForgedMessage(PermanentError):
    """Not from the event's owner, or its routing key, AMQP type and body disagree."""


class UnknownEventType(PermanentError):
    """No event model is registered for this type and schema version."""


class PublishError(EventsError):
    """The broker did not confirm a publish: nacked, returned unroutable, or timed out."""
