"""``/emails``: what was sent, per order or overall."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from service_kit import SessionDep

from email_service.adapters import repository
from email_service.api.schemas import EmailPublic

emails_router = APIRouter(prefix="/emails", tags=["emails"])


@emails_router.get("")
async def list_emails(
    session: SessionDep,
    order_id: Annotated[
        UUID | None, Query(description="Only this order's emails, oldest first.")
    ] = None,
) -> list[EmailPublic]:
    """The emails sent for ``order_id``, oldest first (an empty list for an order
    with none yet). Without ``order_id``: the latest 100 emails of all orders,
    newest first."""
    if order_id is None:
        sent = await repository.latest(session, repository.LATEST_LIMIT)
    else:
        sent = await repository.for_order(session, order_id)
    return [EmailPublic.of(email) for email in sent]
