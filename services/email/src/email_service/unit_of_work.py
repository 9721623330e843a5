"""The email service's unit of work: its repository and ``emit``, over one transaction."""

from __future__ import annotations

from typing import Protocol

import service_kit
from events import Transaction

from email_service.adapters.repository import EmailRepository, SqlEmailRepository


class UnitOfWork(service_kit.UnitOfWork, Protocol):
    emails: EmailRepository


class SqlUnitOfWork(service_kit.SqlUnitOfWork):
    def __init__(self, tx: Transaction) -> None:
        super().__init__(tx)
        self.emails: EmailRepository = SqlEmailRepository(tx.session)
