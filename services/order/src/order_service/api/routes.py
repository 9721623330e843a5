"""One router per resource: products (the catalogue) and orders."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from events import trace_headers
from fastapi import APIRouter, Depends, Header, HTTPException, Response
from fastapi.exceptions import RequestValidationError
from service_kit import AUTH_RESPONSES, DatabaseDep, Principal, dependency, requires
from shop_contract.auth import Scope

from order_service import service_layer
from order_service.api.schemas import OrderAccepted, OrderCreate, OrderPublic, ProductPublic
from order_service.dependencies import Dependencies
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

Customer = Annotated[Principal, Depends(requires(Scope.PLACE_ORDERS))]
DependenciesDep = Annotated[Dependencies, Depends(dependency(Dependencies))]
Reader = Annotated[Principal, Depends(requires(Scope.READ_OWN_ORDERS, Scope.OPERATE))]


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
        **AUTH_RESPONSES,
        403: {"description": "The token is not the customer's the order is for", **_DETAIL},
        409: {"description": "Idempotency-Key already used with another body", **_DETAIL},
        503: {"description": "Database unavailable; retry after Retry-After", **_DETAIL},
    },
)
async def place_order(
    body: OrderCreate,
    deps: DependenciesDep,
    customer: Customer,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OrderAccepted:
    """Accept an order as PENDING; inventory and payment answer asynchronously.

    A customer orders for themself: ``customer_id`` must be the token's subject."""
    if body.customer_id != customer.subject:
        raise HTTPException(status_code=403, detail="customer_id is not the token's subject")
    command = service_layer.PlaceOrder(
        customer_id=body.customer_id,
        email=body.email,
        lines=body.requested_lines(),
        payment_token=body.payment_token,
        request_hash=idempotency.fingerprint(body.model_dump(mode="json")),
        idempotency_key=idempotency_key,
        trace=trace_headers(),
    )
    try:
        order = await deps.place(command)
    except UnorderableLines as exc:
        raise RequestValidationError([_line_error(p) for p in exc.problems]) from exc
    except service_layer.IdempotencyConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    response.headers["Location"] = f"/orders/{order.id}"
    return OrderAccepted.of(order)


@orders.get(
    "/{order_id}", responses={404: {"description": "No such order", **_DETAIL}, **AUTH_RESPONSES}
)
async def get_order(order_id: UUID, db: DatabaseDep, reader: Reader) -> OrderPublic:
    """The order now: status, cancellation reason, and every status change with its cause.

    Customers see their own orders only; another customer's is 404, as if it did not
    exist. Operators see every order."""
    async with db.unit_of_work(SqlUnitOfWork) as uow:
        order = await service_layer.order_of(uow, order_id)
    if order is None or not (reader.may(Scope.OPERATE) or order.customer_id == reader.subject):
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
