"""``/stock/{sku}``: read and restock the stock of one SKU."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from service_kit import AUTH_RESPONSES, DatabaseDep, OperatorDep

from inventory_service import service_layer
from inventory_service.api.schemas import SkuPath, StockPublic, StockUpdate
from inventory_service.domain import StockLevel
from inventory_service.unit_of_work import SqlUnitOfWork

stock_router = APIRouter(prefix="/stock", tags=["stock"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {"description": "Unknown SKU"}
}


@stock_router.get("/{sku}", responses=NOT_FOUND)
async def read_stock(sku: SkuPath, db: DatabaseDep) -> StockPublic:
    async with db.unit_of_work(SqlUnitOfWork) as uow:
        level = await service_layer.stock_of(uow, sku)
    if level is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown SKU {sku!r}")
    return _public(level)


@stock_router.put("/{sku}", responses=AUTH_RESPONSES)
async def restock(
    sku: SkuPath, body: StockUpdate, db: DatabaseDep, _operator: OperatorDep
) -> StockPublic:
    """Set the sellable quantity of ``sku``, creating the SKU if it is new (operators)."""
    async with db.unit_of_work(SqlUnitOfWork) as uow:
        level = await service_layer.restock(uow, sku, body.available)
    return _public(level)


def _public(level: StockLevel) -> StockPublic:
    return StockPublic(sku=level.sku, available=level.available, reserved=level.reserved)
