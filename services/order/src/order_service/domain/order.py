"""The order aggregate: its lines, its status, and the saga outcomes it has seen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from order_service.domain.catalogue import OrderLine
from order_service.domain.money import CURRENCY, to_cents
from order_service.domain.outcomes import Outcome, Side
from order_service.domain.saga import Cancel, Confirm, decide
from order_service.domain.status import OrderStatus


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One entry of an order's history: the status entered, when, and which event caused it."""

    status: OrderStatus
    at: datetime
    event_type: str
    event_id: UUID


@dataclass
class Order:
    id: UUID
    customer_id: str
    email: str
    lines: tuple[OrderLine, ...]
    created_at: datetime
    updated_at: datetime
    currency: str = CURRENCY
    status: OrderStatus = OrderStatus.PENDING
    reason: str | None = None
    inventory: Outcome | None = None
    payment: Outcome | None = None
    history: list[StatusChange] = field(default_factory=list)

    @classmethod
    def place(
        cls,
        *,
        id: UUID,
        customer_id: str,
        email: str,
        lines: Sequence[OrderLine],
        at: datetime,
    ) -> Order:
        if not lines:
            raise ValueError("an order has at least one line")
        return cls(
            id=id,
            customer_id=customer_id,
            email=email,
            lines=tuple(lines),
            created_at=at,
            updated_at=at,
        )

    @property
    def total(self) -> Decimal:
        return to_cents(sum((line.amount for line in self.lines), Decimal(0)))

    def outcome_of(self, side: Side) -> Outcome | None:
        return self.inventory if side is Side.INVENTORY else self.payment

    def record(
        self, outcome: Outcome, *, at: datetime, event_type: str, event_id: UUID
    ) -> StatusChange | None:
        """Record one side's outcome, then move the order on if the saga can decide.

        A side answers once: a later, different answer from the same side (a
        producer bug, or a compensating flow) is ignored, so the first fact stands.
        Outcomes arriving after the order is final are still recorded.
        Returns the status change made, if any.
        """
        if self.outcome_of(outcome.side) is None:
            if outcome.side is Side.INVENTORY:
                self.inventory = outcome
            else:
                self.payment = outcome
            self.updated_at = at
        decision = decide(self.status, self.inventory, self.payment)
        if decision is None:
            return None
        match decision:
            case Confirm():
                self.status = OrderStatus.CONFIRMED
            case Cancel(reason):
                self.status = OrderStatus.CANCELLED
                self.reason = reason
        change = StatusChange(self.status, at, event_type, event_id)
        self.history.append(change)
        self.updated_at = at
        return change
