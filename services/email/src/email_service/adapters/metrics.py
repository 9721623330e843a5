"""Prometheus metrics of the email service (served at /metrics)."""

from prometheus_client import Counter

EMAILS_SENT = Counter("emails_sent_total", "Emails the SMTP server accepted, by kind.", ["kind"])
EMAIL_FAILURES = Counter(
    "email_send_failures_total",
    "Sends that failed, by kind and outcome (retried: temporary, rejected: permanent).",
    ["kind", "outcome"],
)
EMAIL_DUPLICATES = Counter(
    "email_duplicates_skipped_total",
    "Emails not sent because this order already had one of this kind.",
    ["kind"],
)
