"""The fuzzing tier: schemathesis against every service's real app and OpenAPI schema.

Each service runs as it is deployed for HTTP (``--role api``: its routes, its own fresh
database, no broker) behind a real uvicorn on this machine, and gets what schemathesis
derives from the service's OpenAPI document: the schema's examples, boundary and
negative values of every parameter, header and body, unexpected methods and content
types, then generated cases. Every request carries the token the contract asks for:
the customer named in a ``POST /orders`` body, an operator for everything else.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import schemathesis
import uvicorn
from email_service.service import SERVICE as EMAIL
from inventory_service.service import SERVICE as INVENTORY
from order_service.service import SERVICE as ORDER
from payment_service.service import SERVICE as PAYMENT
from schemathesis import Case
from schemathesis.auths import AuthContext
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.schemas import OpenApiSchema
from service_kit import create_app, upgrade_head
from service_kit.inputs import has_lone_surrogate

from tests.conftest import ADMIN_DSN, dsn_for
from tests.support.apps import AnyService, with_test_keys
from tests.support.system import free_port
from tests.support.tokens import customer, operator

SERVICES: dict[str, AnyService] = {
    "order": ORDER,
    "inventory": INVENTORY,
    "payment": PAYMENT,
    "email": EMAIL,
}

# Bounded and deterministic, so CI is stable and the tier takes a minute or two on two
# cores: per operation the schema's examples, the coverage phase's boundary and
# negative cases, and at most MAX_EXAMPLES generated ones, the same every run
# (derandomized, no example database).
MAX_EXAMPLES = 100
# What broke the services before, NUL (PostgreSQL refuses it), and other text that is
# easy to get wrong: generated strings are one of these now and then. (Lone surrogates
# schemathesis cannot carry; tests/integration/trust/test_bad_input.py sends them.)
HOSTILE_TEXT = [
    "\x00",
    "a\x00b",
    "\ufeff",
    "\u202e",
    "\U0010ffff",
    "\r\n",
    "\x1b[31m",
]
CONFIG: dict[str, Any] = {
    "generation": {
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        "database": "none",
        # Valid and invalid input alike: invalid input must get a documented 4xx.
        "mode": "all",
        "dictionaries": {"string": {"dictionary": "hostile", "probability": 0.1}},
    },
    "dictionaries": {
        "hostile": {"values": HOSTILE_TEXT},
        # The seeded catalogue's SKUs for most order lines (an order with an unknown
        # SKU is refused before anything else is looked at: the fuzzer gets further),
        # and two that only a NUL keeps out of it.
        "catalogue": {
            "values": ["KEYBOARD-01", "MOUSE-01", "USB-C-HUB", "HEADSET-01", "MOUSE-01\x00"]
        },
    },
    "parameters": {
        "body.items[*].sku": {"dictionary": "catalogue", "probability": 0.7},
        "body.customer_id": {"dictionary": "hostile", "probability": 0.3},
        "body.payment_token": {"dictionary": "hostile", "probability": 0.3},
    },
    # The same cases every run: nothing learnt from earlier answers (which hold fresh
    # ids and times) steers what is generated next.
    "phases": {
        "examples": {"enabled": True, "extra-data-sources": {"responses": False}},
        "coverage": {"enabled": True, "extra-data-sources": {"responses": False}},
        "fuzzing": {
            "enabled": True,
            "extra-data-sources": {"responses": False},
            "error-feedback": {"enabled": False},
        },
    },
    # Every check schemathesis has, at its defaults: not_a_server_error,
    # status_code_conformance, content_type_conformance, response_schema_conformance,
    # response_headers_conformance, negative_data_rejection, ignored_auth,
    # missing_required_header, unsupported_method, allow_header_conformance, ...
    "checks": {
        # ... but this one, not applicable (and off by default): input the schema
        # allows is still refused by rules a schema cannot express (a SKU must be in the
        # catalogue, customer_id must be the token's subject, an order must exist), each
        # with a documented 4xx.
        "positive_data_acceptance": {"enabled": False},
    },
}


# Cases sent, per service and status code, for the summary at the end of the run.
SENT: defaultdict[str, Counter[int]] = defaultdict(Counter)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not SENT:
        return
    terminalreporter.section("fuzzing: cases sent, by status code")
    for service, statuses in SENT.items():
        spread = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
        terminalreporter.write_line(f"{service}: {statuses.total()} ({spread})")


class ShopTokens:
    """The caller each request needs: the customer named in a ``POST /orders`` body
    (so the order is theirs), an operator for every other route."""

    def get(self, case: Case, ctx: AuthContext) -> str:
        return "per request"  # the token depends on the case: it is made in set()

    def set(self, case: Case, data: str, ctx: AuthContext) -> None:
        case.headers = {**(case.headers or {}), **_caller(case)}


def _caller(case: Case) -> dict[str, str]:
    if case.method.upper() == "POST" and case.path == "/orders":
        body: Any = case.body
        subject = body.get("customer_id") if isinstance(body, dict) else None
        if isinstance(subject, str) and subject and not has_lone_surrogate(subject):
            return customer(subject)
        return customer("fuzz-customer")  # no token can name it: refused anyway
    return operator()


def _settings(service: AnyService, **values: Any) -> Any:
    return with_test_keys(service.settings(migrate_on_start=False, **values))


def schema_of(service: AnyService) -> OpenApiSchema:
    """``service``'s OpenAPI schema (its app's own document, as /openapi.json serves
    it: the fixture checks that), to be fuzzed with the run's tokens."""
    document = create_app(service, _settings(service), role="api").openapi()
    schema = schemathesis.openapi.from_dict(document, config=SchemathesisConfig.from_dict(CONFIG))
    schema.auth(refresh_interval=None)(ShopTokens)
    return schema


T = TypeVar("T")


def _elsewhere(function: Callable[..., T], *args: Any) -> T:
    # Database setup and Alembic run their own event loops: in a thread of their own,
    # away from pytest-asyncio's.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def serving(service: AnyService) -> Iterator[str]:
    """``service``'s API on a real uvicorn (a thread with its own event loop) on a free
    port of this machine, with a fresh, migrated database. Yields its base URL."""
    database = f"test_fuzz_{service.name}_{uuid.uuid4().hex[:10]}"
    _elsewhere(asyncio.run, _admin(f'CREATE DATABASE "{database}"'))
    try:
        settings = _settings(service, database_url=dsn_for(database))
        _elsewhere(upgrade_head, Path(service.migrations), settings.sqlalchemy_url)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(service, settings, role="api"),
                host="127.0.0.1",
                port=port,
                log_config=None,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, name=f"fuzz-{service.name}", daemon=True)
        thread.start()
        try:
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError(f"the {service.name} service did not start")
                thread.join(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(30)
    finally:
        _elsewhere(asyncio.run, _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def served() -> Iterator[Callable[[str], str]]:
    """``served("order")`` → the base URL of that service, started on first use and
    kept for the module (each of its operations is a test of its own)."""
    urls: dict[str, str] = {}
    with ExitStack() as stack:

        def url(name: str) -> str:
            if name not in urls:
                urls[name] = stack.enter_context(serving(SERVICES[name]))
                served_document = httpx.get(f"{urls[name]}/openapi.json", timeout=10).json()
                document = create_app(SERVICES[name], _settings(SERVICES[name]), role="api")
                assert served_document == document.openapi(), "fuzzed: the schema it serves"
            return urls[name]

        yield url
