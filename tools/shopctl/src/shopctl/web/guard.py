"""Only this page may press its buttons.

The server listens on loopback, but any web page the operator visits could post
to it (cross-site request forgery) or reach it under another name (DNS
rebinding). So actions take only JSON, which a foreign page cannot send without
a preflight we never grant, and refuse a request whose ``Origin`` is not ours;
the app also accepts only loopback host names when bound to loopback.
"""

from __future__ import annotations

from collections.abc import Mapping

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})


def allowed_hosts(bind: str) -> list[str]:
    """Host names the app answers to: loopback ones for a loopback bind."""
    if bind in WILDCARD_BINDS:
        return ["*"]
    if bind in LOOPBACK_NAMES:
        return list(LOOPBACK_NAMES)
    return [bind, *LOOPBACK_NAMES]


def action_refused(headers: Mapping[str, str], *, scheme: str = "http") -> str | None:
    """Why a state-changing request is refused, or None if it may go on."""
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return "send JSON (Content-Type: application/json)"
    origin = headers.get("origin")
    if origin is not None and origin != f"{scheme}://{headers.get('host', '')}":
        return f"requests from {origin} are not accepted"
    return None
