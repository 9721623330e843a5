"""``/stock/{sku}``: read and restock the stock of one SKU."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, status
from service_kit import SessionDep

from inventory_service.adapters.repository import StockRepository
from inventory_service.api.schemas import SkuPath, StockPublic, StockUpdate
from inventory_service.domain import StockLevel

log = structlog.get_logger(__name__)

stock_router = APIRouter(prefix="/stock", tags=["stock"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {"description": "Unknown SKU"}
}


@stock_router.get("/{sku}", responses=NOT_FOUND)
async def read_stock(sku: SkuPath, session: SessionDep) -> StockPublic:
    level = await StockRepository(session).get(sku)
    if level is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown SKU {sku!r}")
    return _public(level)


@stock_router.put("/{sku}")
async def restock(sku: SkuPath, body: StockUpdate, session: SessionDep) -> StockPublic:
    """Set the sellable quantity of ``sku``, creating the SKU if it is new."""
    async with session.begin():
        level = await StockRepository(session).set_available(sku, body.available)
    log.info("stock.restocked", sku=sku, available=level.available, reserved=level.reserved)
    return _public(level)


def _public(level: StockLevel) -> StockPublic:
    return StockPublic(sku=level.sku, available=level.available, reserved=level.reserved)
