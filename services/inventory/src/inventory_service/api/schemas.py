"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

SKU_PATTERN = r"^[A-Za-z0-9._-]+$"
MAX_SKU_LENGTH = 64
MAX_AVAILABLE = 1_000_000

SkuPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_SKU_LENGTH,
        pattern=SKU_PATTERN,
        description="Stock keeping unit: letters, digits, '.', '_' or '-'.",
        examples=["KEYBOARD-01"],
    ),
]


class StockUpdate(BaseModel):
    """Restock: the new sellable quantity (what is reserved stays reserved)."""

    model_config = ConfigDict(extra="forbid")

    # strict: "5", 5.0 or true are mistakes, not quantities.
    available: int = Field(ge=0, le=MAX_AVAILABLE, strict=True, examples=[100])


class StockPublic(BaseModel):
    sku: str = Field(max_length=MAX_SKU_LENGTH)
    available: int = Field(ge=0, description="Units that can still be sold.")
    reserved: int = Field(ge=0, description="Units held for orders not yet confirmed.")
