"""Which service an event comes from, and the colour it wears on screen."""

from __future__ import annotations

SERVICE_COLOURS: dict[str, str] = {
    "order": "cyan",
    "inventory": "magenta",
    "payment": "green",
    "email": "yellow",
}
UNKNOWN_COLOUR = "white"


def producer_of(routing_key: str) -> str:
    """``payment.authorized`` → ``payment``: the routing key names its aggregate."""
    return routing_key.split(".", 1)[0]


def colour_of(service: str) -> str:
    return SERVICE_COLOURS.get(service, UNKNOWN_COLOUR)


def styled(service: str) -> str:
    """Rich markup for a service name in its colour."""
    return f"[{colour_of(service)}]{service}[/]"
