"""Business metrics of the inventory (served at /metrics next to the messaging ones)."""

from prometheus_client import Counter

OUTCOMES = ("reserved", "rejected", "released", "committed", "cancelled")

RESERVATIONS = Counter(
    "inventory_reservations_total",
    "Reservations that reached a status, by outcome "
    "(reserved, rejected, released, committed, cancelled = cancelled before reserving).",
    ["outcome"],
)
# Every series exists from the start, so rate() and alerts see 0, not "no data".
for _outcome in OUTCOMES:
    RESERVATIONS.labels(_outcome)
