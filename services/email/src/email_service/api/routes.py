"""``/emails?order_id=…``: what was sent for one order (operators)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from service_kit import AUTH_RESPONSES, DatabaseDep, OperatorDep

from email_service import service_layer
from email_service.api.schemas import EmailPublic
from email_service.unit_of_work import SqlUnitOfWork

emails_router = APIRouter(prefix="/emails", tags=["emails"])


@emails_router.get("", responses=AUTH_RESPONSES)
async def list_emails(
    db: DatabaseDep,
    _operator: OperatorDep,
    order_id: Annotated[UUID, Query(description="The order whose emails to list.")],
) -> list[EmailPublic]:
    """The emails sent for ``order_id``, oldest first (an empty list for an order with
    none yet). ``order_id`` is required: there is no list of every customer's mail."""
    async with db.unit_of_work(SqlUnitOfWork) as uow:
        sent = await service_layer.emails_of(uow, order_id)
    return [EmailPublic.of(email) for email in sent]
