"""What the seam between the library and the shop promises, checked."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
IO_LIBRARIES = ("aio_pika", "aiormq", "sqlalchemy", "asyncpg")
PURE_MODULES = [
    "shop_contract",
    "shop_contract.testing",
    "order_service.domain",
    "order_service.domain.order",
    "inventory_service.domain",
    "payment_service.domain",
    "email_service.domain.emails",
    "email_service.domain.templates",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_importing_the_contract_or_a_domain_loads_no_io_library(module: str) -> None:
    # A fresh interpreter: this one has long loaded everything.
    probe = (
        f"import sys, {module}; print(','.join(m for m in {IO_LIBRARIES!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    assert loaded == "", f"importing {module} loaded {loaded}"


# SQL's ORDER BY is the one "order" a generic library may say.
SHOP_WORDS = re.compile(
    r"\b(orders?(?!\s+by\b)|inventory|payments?|emails?|shop|skus?|stock|customers?)\b",
    re.IGNORECASE,
)


def test_the_generic_library_names_nothing_of_the_shop() -> None:
    source = ROOT / "libs" / "events"
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted([*source.rglob("*.py"), source / "README.md"])
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if SHOP_WORDS.search(line)
    ]
    assert offenders == []
