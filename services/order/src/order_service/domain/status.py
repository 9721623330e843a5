"""An order's lifecycle: PENDING until both saga outcomes are in, then final."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        return self is not OrderStatus.PENDING
