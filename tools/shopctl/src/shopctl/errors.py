"""What can go wrong in a way the operator should read about (exit code 1).

Each is shown as one line, without a traceback; anything else is a bug.
"""

from __future__ import annotations


class ShopctlError(Exception):
    """Base of every error shopctl reports to the operator."""


class QueueNotFound(ShopctlError):
    def __init__(self, queue: str) -> None:
        super().__init__(f"queue {queue!r} does not exist (has its service started once?)")
        self.queue = queue


class NotADeadLetterQueue(ShopctlError):
    def __init__(self, queue: str) -> None:
        super().__init__(f"{queue!r} is not a dead-letter queue (<service>.events.dlq)")
        self.queue = queue


class OrderNotFound(ShopctlError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} is unknown to the order service")
        self.order_id = order_id


class Unreachable(ShopctlError):
    """A server shopctl needs did not answer."""
