"""One router per resource: products (the catalogue) and orders."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, HTTPException, Response
from fastapi.exceptions import RequestValidationError
from service_kit import DatabaseDep

from order_service import service_layer
from order_service.api.schemas import OrderAccepted, OrderCreate, OrderPublic, ProductPublic
from order_service.domain import idempotency
from order_service.domain.catalogue import LineProblem, UnorderableLines
from order_service.unit_of_work import SqlUnitOfWork

products = APIRouter(prefix="/products", tags=["products"])
orders = APIRouter(prefix="/orders", tags=["orders"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[\x20-\x7e]+$",
        description="Makes the request safe to retry: the same key and body place one order.",
    ),
]

_DETAIL = {"content": {"application/json": {"example": {"detail": "..."}}}}


@products.get("")
async def list_products(db: DatabaseDep) -> list[ProductPublic]:
    """The catalogue, with prices in EUR."""
    async with db.unit_of_work(SqlUnitOfWork) as uow:
        catalogue = await service_layer.catalogue(uow)
    return [ProductPublic.of(product) for product in catalogue]


@orders.post(
    "",
    status_code=202,
    responses={
        409: {"description": "Idempotency-Key already used with another body", **_DETAIL},
        503: {"description": "Database unavailable; retry after Retry-After", **_DETAIL},
    },
)
async def place_order(
    body: OrderCreate,
    db: DatabaseDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OrderAccepted:
    """Accept an order as PENDING; inventory and payment answer asynchronously."""
    command = service_layer.PlaceOrder(
        customer_id=body.customer_id,
        email=body.email,
        lines=body.requested_lines(),
        payment_token=body.payment_token,
        request_hash=idempotency.fingerprint(body.model_dump(mode="json")),
        idempotency_key=idempotency_key,
    )
    try:
        async with db.unit_of_work(SqlUnitOfWork) as uow:
            order = await service_layer.place_order(uow, command)
    except UnorderableLines as exc:
        raise RequestValidationError([_line_error(p) for p in exc.problems]) from exc
    except service_layer.IdempotencyConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    response.headers["Location"] = f"/orders/{order.id}"
    return OrderAccepted.of(order)


@orders.get("/{order_id}", responses={404: {"description": "No such order", **_DETAIL}})
async def get_order(order_id: UUID, db: DatabaseDep) -> OrderPublic:
    """The order now: status, cancellation reason, and every status change with its cause."""
    async with db.unit_of_work(SqlUnitOfWork) as uow:
        order = await service_layer.order_of(uow, order_id)
    if order is None:
        raise HTTPException(status_code=404, detail=f"order {order_id} not found")
    return OrderPublic.of(order)


def _line_error(problem: LineProblem) -> dict[str, Any]:
    # Shaped like pydantic's own errors, so clients parse one 422 format.
    return {
        "type": problem.kind,
        "loc": ("body", "items", problem.index, "sku"),
        "msg": problem.message,
        "input": problem.sku,
    }
