"""The join of the saga: what an order becomes, given what each side answered."""

from __future__ import annotations

from dataclasses import dataclass

from order_service.domain.outcomes import Outcome
from order_service.domain.status import OrderStatus


@dataclass(frozen=True, slots=True)
class Confirm:
    """Both sides said yes: the order is confirmed."""


@dataclass(frozen=True, slots=True)
class Cancel:
    """A side said no: the order is cancelled, for this reason."""

    reason: str


Decision = Confirm | Cancel


def decide(
    status: OrderStatus, inventory: Outcome | None, payment: Outcome | None
) -> Decision | None:
    """``None`` while waiting, or once final: a final order never changes again.

    A refusal cancels at once, without waiting for the other side. Were both
    refusals ever known together, inventory's reason is given (a fixed order keeps
    the answer deterministic).
    """
    if status.is_final:
        return None
    for outcome in (inventory, payment):
        if outcome is not None and not outcome.positive:
            assert outcome.reason is not None
            return Cancel(outcome.reason)
    if inventory is not None and payment is not None:
        return Confirm()
    return None
