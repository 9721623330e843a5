"""Business metrics of the payment service (served at /metrics)."""

from prometheus_client import Counter

AUTHORIZATIONS = Counter(
    "payment_authorizations_total",
    "Authorization attempts at the payment gateway, by outcome "
    "(authorized, declined, unavailable).",
    ["outcome"],
)
