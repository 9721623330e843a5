"""Business metrics of the payment service (served at /metrics)."""

from prometheus_client import Counter

AUTHORIZATIONS = Counter(
    "payment_authorizations_total",
    "Authorization attempts at the payment gateway, by outcome "
    "(authorized, declined, unavailable).",
    ["outcome"],
)

ORPHANS_RELEASED = Counter(
    "payment_orphan_holds_released_total",
    "Authorizations voided at the gateway for orders cancelled before we saw an answer"
    " (an authorization whose reply was lost).",
)
