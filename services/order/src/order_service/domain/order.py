"""The order aggregate: its lines, its status, and the saga outcomes it has seen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

import shop_contract
from shop_contract import OrderCancelled, OrderConfirmed, OrderCreated

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


class Answer(StrEnum):
    """What one side's outcome meant to the order."""

    NEW = "new"  # the side's first answer: recorded
    REPEATED = "repeated"  # the same answer again (a redelivery): nothing to do
    CONFLICTING = "conflicting"  # a different answer from a side that already answered


@dataclass(frozen=True, slots=True)
class Recorded:
    answer: Answer
    change: StatusChange | None = None  # the status the order moved to, if it moved


DEADLINE_EXCEEDED = "deadline exceeded"


@dataclass
class Order:
    id: UUID
    customer_id: str
    email: str
    lines: tuple[OrderLine, ...]
    created_at: datetime
    updated_at: datetime
    # Still PENDING then, whatever is stuck, the order is cancelled.
    deadline_at: datetime
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
        deadline: timedelta,
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
            deadline_at=at + deadline,
        )

    @property
    def total(self) -> Decimal:
        return to_cents(sum((line.amount for line in self.lines), Decimal(0)))

    def outcome_of(self, side: Side) -> Outcome | None:
        return self.inventory if side is Side.INVENTORY else self.payment

    def record(
        self, outcome: Outcome, *, at: datetime, event_type: str, event_id: UUID
    ) -> Recorded:
        """Record one side's outcome, then move the order on if the saga can decide.

        A side answers once: a later answer from the same side (a redelivery, a
        producer bug) changes nothing, so the first fact stands. Outcomes
        arriving after the order is final are still recorded.
        """
        earlier = self.outcome_of(outcome.side)
        if earlier is not None:
            return Recorded(Answer.REPEATED if earlier == outcome else Answer.CONFLICTING)
        if outcome.side is Side.INVENTORY:
            self.inventory = outcome
        else:
            self.payment = outcome
        self.updated_at = at
        decision = decide(self.status, self.inventory, self.payment)
        if decision is None:
            return Recorded(Answer.NEW)
        match decision:
            case Confirm():
                self.status = OrderStatus.CONFIRMED
            case Cancel(reason):
                self.status = OrderStatus.CANCELLED
                self.reason = reason
        change = StatusChange(self.status, at, event_type, event_id)
        self.history.append(change)
        return Recorded(Answer.NEW, change)

    def expire(self, *, at: datetime) -> bool:
        """Cancel a PENDING order whose deadline has passed; True if it did.

        The answers that come later are still recorded, and change nothing (a
        final order never changes again); compensation runs as for any cancellation.
        """
        if self.status.is_final or at < self.deadline_at:
            return False
        self.status = OrderStatus.CANCELLED
        self.reason = DEADLINE_EXCEEDED
        self.updated_at = at
        return True

    def entered(self, change: StatusChange) -> None:
        """Record in the history the status change just made (and what caused it)."""
        self.history.append(change)

    def created(self, *, sealed_payment_token: str) -> OrderCreated:
        """The event announcing this order to inventory, payment and email; the card
        token in it is sealed for the payment service alone."""
        return OrderCreated(
            order_id=self.id,
            customer_id=self.customer_id,
            email=self.email,
            items=self._lines(),
            total=self.total,
            currency=self.currency,
            sealed_payment_token=sealed_payment_token,
        )

    def outcome(self) -> OrderConfirmed | OrderCancelled:
        """The event announcing how the order ended (it must be final)."""
        if self.status is OrderStatus.CONFIRMED:
            return OrderConfirmed(
                order_id=self.id,
                customer_id=self.customer_id,
                email=self.email,
                items=self._lines(),
                total=self.total,
                currency=self.currency,
            )
        if self.status is OrderStatus.CANCELLED and self.reason is not None:
            return OrderCancelled(
                order_id=self.id,
                customer_id=self.customer_id,
                email=self.email,
                reason=self.reason,
            )
        raise ValueError(f"order {self.id} is {self.status}: it has no outcome yet")

    def _lines(self) -> tuple[shop_contract.OrderLine, ...]:
        return tuple(
            shop_contract.OrderLine(
                sku=line.sku, quantity=line.quantity, unit_price=line.unit_price
            )
            for line in self.lines
        )
