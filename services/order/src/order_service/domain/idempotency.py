"""Idempotent order placement: a key remembers which request it was first used for."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def fingerprint(request: Any) -> str:
    """SHA-256 of the request in canonical JSON (sorted keys, no whitespace).

    ``request`` is the *validated* body, so spacing, key order and equivalent
    spellings of the same values hash alike; line order is significant.
    """
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def same_request(stored_fingerprint: str, request_fingerprint: str) -> bool:
    return stored_fingerprint == request_fingerprint
