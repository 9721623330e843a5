"""The payment business, free of I/O: statuses, changes, decisions."""

from payment_service.domain.decisions import (
    Authorize,
    Ignore,
    Void,
    decide_on_order_cancelled,
    decide_on_order_created,
)
from payment_service.domain.payment import (
    PUBLIC_STATUSES,
    InvalidTransition,
    Payment,
    PaymentStatus,
    record_authorization,
    record_decline,
    record_void,
)

__all__ = [
    "PUBLIC_STATUSES",
    "Authorize",
    "Ignore",
    "InvalidTransition",
    "Payment",
    "PaymentStatus",
    "Void",
    "decide_on_order_cancelled",
    "decide_on_order_created",
    "record_authorization",
    "record_decline",
    "record_void",
]
