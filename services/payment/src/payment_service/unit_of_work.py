"""The payment service's unit of work: its repository and ``emit``, over one transaction."""

from __future__ import annotations

from typing import Protocol

import service_kit
from events import Transaction

from payment_service.adapters.repository import PaymentRepository, SqlPaymentRepository


class UnitOfWork(service_kit.UnitOfWork, Protocol):
    payments: PaymentRepository


class SqlUnitOfWork(service_kit.SqlUnitOfWork):
    def __init__(self, tx: Transaction) -> None:
        super().__init__(tx)
        self.payments: PaymentRepository = SqlPaymentRepository(tx.session)
