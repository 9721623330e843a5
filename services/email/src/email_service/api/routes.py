"""``/emails``: what was sent, per order or overall."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from service_kit import DatabaseDep

from email_service import service_layer
from email_service.api.schemas import EmailPublic
from email_service.unit_of_work import SqlUnitOfWork

emails_router = APIRouter(prefix="/emails", tags=["emails"])


@emails_router.get("")
async def list_emails(
    db: DatabaseDep,
    order_id: Annotated[
        UUID | None, Query(description="Only this order's emails, oldest first.")
    ] = None,
) -> list[EmailPublic]:
    """The emails sent for ``order_id``, oldest first (an empty list for an order
    with none yet). Without ``order_id``: the latest 100 emails of all orders,
    newest first."""
    async with db.unit_of_work(SqlUnitOfWork) as uow:
        sent = await service_layer.emails_of(uow, order_id)
    return [EmailPublic.of(email) for email in sent]
