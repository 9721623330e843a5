"""No client input causes a 5xx: the review's findings, tried against the four real
services (in-process, real PostgreSQL and RabbitMQ).

Before the fix: a lone surrogate ("\\ud800") in a JSON string, NaN or Infinity, or a NUL
byte in ``customer_id`` or ``sku`` gave 500 (the 422 could not be rendered, or
PostgreSQL refused the text); a 200 KB header was accepted. Every refusal must be a
clear 4xx and write nothing: each test compares every table of every service's
database before and after.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from tests.support.tokens import ShopAuth, customer, operator

pytestmark = pytest.mark.timeout(120)

Apps = dict[str, httpx.AsyncClient]
JSON = {"content-type": "application/json"}
PLACEHOLDER = "@@VALUE@@"


def app_of(client: httpx.AsyncClient) -> FastAPI:
    app: FastAPI = client._transport.app  # type: ignore[attr-defined]
    return app


@pytest.fixture
async def shop(apps: Apps) -> AsyncIterator[Apps]:
    """The running services, through clients that see a crash as the 500 a real
    server sends (not as the exception itself)."""
    clients = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app_of(client), raise_app_exceptions=False),
            base_url="http://test",
            auth=ShopAuth(),
        )
        for name, client in apps.items()
    }
    yield clients
    for client in clients.values():
        await client.aclose()


async def snapshot(apps: Apps) -> dict[str, str]:
    """A fingerprint of every row of every table of every service: equal before and
    after means nothing was written."""
    prints = {}
    for name, client in apps.items():
        engine = app_of(client).state.runtime.database.engine
        async with engine.connect() as connection:
            tables = (
                await connection.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                        " AND tablename <> 'alembic_version' ORDER BY tablename"
                    )
                )
            ).scalars()
            for table in list(tables):
                rows = await connection.execute(
                    text(
                        f"SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM \"{table}\" t"  # noqa: E501
                    )
                )
                count, digest = rows.one()
                prints[f"{name}.{table}"] = f"{count}:{digest}"
    return prints


def order(**changes: Any) -> dict[str, Any]:
    return {
        "customer_id": "c-1",
        "email": "buyer@example.com",
        "items": [{"sku": "MOUSE-01", "quantity": 1}],
        "payment_token": "tok_visa",
    } | changes


def with_raw(body: dict[str, Any], raw: str) -> bytes:
    """``body`` as JSON with the placeholder string replaced by ``raw`` JSON text
    (how NaN, 1e400 or an escaped lone surrogate travel on the wire)."""
    return json.dumps(body).replace(json.dumps(PLACEHOLDER), raw).encode()


def order_with(path: tuple[str | int, ...], raw: str) -> bytes:
    body: Any = order()
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = PLACEHOLDER
    return with_raw(body, raw)


STRING_FIELDS: list[tuple[str | int, ...]] = [
    ("customer_id",),
    ("email",),
    ("items", 0, "sku"),
    ("payment_token",),
]
NUMBER_FIELDS: list[tuple[str | int, ...]] = [("items", 0, "quantity")]


def problems(
    sent: Iterable[tuple[str, httpx.Response]], *, statuses: range = range(400, 500)
) -> list[tuple[str, int, str]]:
    """Each answer that is not a clear 4xx (a JSON body with a ``detail``)."""
    misses = []
    for what, response in sent:
        clear = False
        with suppress(ValueError):
            clear = bool(response.json().get("detail"))
        if response.status_code not in statuses or not clear:
            misses.append((what, response.status_code, response.text[:200]))
    return misses


def no_misses(misses: list[Any]) -> None:
    """Every miss on a line of its own, so a failure shows them all."""
    assert not misses, f"{len(misses)} misses:\n" + "\n".join(repr(m) for m in misses)


async def post_order(apps: Apps, content: bytes, **headers: str) -> httpx.Response:
    # The customer's own token: a refusal must come from the input, not from a 403.
    return await apps["order"].post(
        "/orders", content=content, headers={**JSON, **customer("c-1"), **headers}
    )


async def put_stock(apps: Apps, sku: str, content: bytes) -> httpx.Response:
    return await apps["inventory"].put(
        f"/stock/{sku}", content=content, headers={**JSON, **operator()}
    )


async def test_a_lone_surrogate_in_any_json_string_is_a_4xx_and_writes_nothing(shop: Apps) -> None:
    before = await snapshot(shop)
    sent = []
    for raw in ('"\\ud800"', '"abc\\udfff"', '"\\udc00\\ud800x"'):
        for path in STRING_FIELDS:
            sent.append((f"{path} = {raw}", await post_order(shop, order_with(path, raw))))
        # A key is a string too.
        body = "{" + raw + ": 1, " + json.dumps(order())[1:]
        sent.append((f"key {raw}", await post_order(shop, body.encode())))
        sent.append(
            (
                f"stock key {raw}",
                await put_stock(shop, "MOUSE-01", f'{{{raw}: 1, "available": 1}}'.encode()),
            )
        )
        sent.append(
            (
                f"available = {raw}",
                await put_stock(shop, "MOUSE-01", f'{{"available": {raw}}}'.encode()),
            )
        )
    no_misses(problems(sent))
    assert await snapshot(shop) == before


NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1.5e99999"]
HUGE = [str(10**400), str(-(10**400)), "9" * 5000]


async def test_nan_infinity_and_huge_numbers_are_a_4xx_and_write_nothing(shop: Apps) -> None:
    before = await snapshot(shop)
    sent = []
    for raw in NON_FINITE + HUGE:
        for path in NUMBER_FIELDS + STRING_FIELDS:
            sent.append((f"{path} = {raw[:20]}", await post_order(shop, order_with(path, raw))))
        sent.append(
            (
                f"available = {raw[:20]}",
                await put_stock(shop, "MOUSE-01", f'{{"available": {raw}}}'.encode()),
            )
        )
    no_misses(problems(sent))
    assert await snapshot(shop) == before


async def test_nan_is_refused_naming_the_field(shop: Apps) -> None:
    response = await post_order(shop, order_with(("items", 0, "quantity"), "NaN"))
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "items", 0, "quantity"]]
    surrogate = await post_order(shop, order_with(("customer_id",), '"\\ud800"'))
    assert surrogate.status_code == 422
    assert [e["loc"] for e in surrogate.json()["detail"]] == [["body", "customer_id"]]


async def test_nul_bytes_are_a_4xx_and_write_nothing(shop: Apps) -> None:
    before = await snapshot(shop)
    sent = []
    for raw in ('"\\u0000"', '"c-1\\u0000"', '"a\\u0000@example.com"'):
        for path in STRING_FIELDS:
            body = order_with(path, raw)
            # customer_id is the token's subject, so the request gets past the 403.
            subject = json.loads(body)["customer_id"]
            sent.append((f"{path} = {raw}", await post_order(shop, body, **customer(subject))))
    sent.append(
        (
            "Idempotency-Key",
            await post_order(shop, json.dumps(order()).encode(), **{"Idempotency-Key": "k\x00"}),
        )
    )
    body = json.dumps({"available": 3}).encode()
    for sku in ("%00", "MOUSE%00", "A%00B"):
        sent.append((f"PUT /stock/{sku}", await put_stock(shop, sku, body)))
        sent.append((f"GET /stock/{sku}", await shop["inventory"].get(f"/stock/{sku}")))
    sent.append(("GET /emails", await shop["email"].get("/emails?order_id=%00")))
    sent.append(("GET /payments", await shop["payment"].get("/payments/%00")))
    sent.append(("GET /orders", await shop["order"].get("/orders/%00")))
    no_misses(problems(sent))
    assert await snapshot(shop) == before


async def test_a_nul_byte_in_customer_id_is_422_naming_the_field(shop: Apps) -> None:
    body = order_with(("customer_id",), '"c\\u0000"')
    response = await post_order(shop, body, **customer("c\x00"))
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "customer_id"]]


INVALID_UTF8 = [
    b"\xff",  # never in UTF-8
    b"\xc3\x28",  # a lead byte without its continuation
    b"\xed\xa0\x80",  # a surrogate, UTF-8-encoded
    b"\xc0\xaf",  # an overlong "/"
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
]


async def test_invalid_utf8_in_the_body_is_a_4xx_and_writes_nothing(shop: Apps) -> None:
    before = await snapshot(shop)
    sent = []
    for raw in INVALID_UTF8:
        for path in STRING_FIELDS:
            body = order_with(path, '"X"').replace(b'"X"', b'"' + raw + b'"')
            sent.append((f"{path} = {raw!r}", await post_order(shop, body)))
        stock = b'{"available": 1, "' + raw + b'": 1}'
        sent.append((f"stock {raw!r}", await put_stock(shop, "MOUSE-01", stock)))
        # Not JSON at all, under other content types too.
        for content_type in ("application/json", "text/plain", "application/octet-stream"):
            response = await shop["order"].post(
                "/orders",
                content=raw + b"{",
                headers={"content-type": content_type, **customer("c-1")},
            )
            sent.append((f"{content_type} {raw!r}", response))
    no_misses(problems(sent))
    assert await snapshot(shop) == before


async def test_deeply_nested_json_is_a_4xx(shop: Apps) -> None:
    sent = []
    for depth in (100, 900, 20_000):
        nested = "[" * depth + "]" * depth
        sent.append(
            (f"depth {depth}", await post_order(shop, order_with(("customer_id",), nested)))
        )
        sent.append(
            (
                f"stock depth {depth}",
                await put_stock(shop, "MOUSE-01", f'{{"available": {nested}}}'.encode()),
            )
        )
    no_misses(problems(sent))


def compact(*parts: bytes) -> str:
    """A JWS-shaped token of these raw parts (base64url, no padding)."""
    return ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in parts)


ODD_TOKENS = [
    "",
    "a.b.c",
    "....",
    "\xff\xfe",
    "x" * 9000,
    compact(b"{}", b"{}", b""),
    compact(b'{"alg":"none"}', b'{"sub":"operator","scope":"operate"}', b""),
    compact(b'{"alg":"EdDSA","kid":[1]}', b"[]", b"sig"),
    compact(b"NaN", b'{"exp": 1e400}', b"x"),
    compact(bytes([0xFF, 0xFE]), b"\x00", b"\x00"),
]


async def test_odd_bearer_tokens_are_401(shop: Apps) -> None:
    sent = []
    for token in ODD_TOKENS:
        headers = {"Authorization": f"Bearer {token}".encode("latin-1")}
        sent.append(
            (
                f"PUT {token[:30]!r}",
                await shop["inventory"].put(
                    "/stock/MOUSE-01", json={"available": 1}, headers=headers
                ),
            )
        )
        sent.append(
            (
                f"GET {token[:30]!r}",
                await shop["payment"].get(f"/payments/{uuid.uuid4()}", headers=headers),
            )
        )
    no_misses(problems(sent, statuses=range(401, 402)))


BIG_HEADER = "x" * (200 * 1024)


async def test_a_200_kb_header_is_431(shop: Apps) -> None:
    sent = []
    for name, client in shop.items():
        for path in ("/healthz", "/openapi.json"):
            response = await client.get(path, headers={"X-Padding": BIG_HEADER})
            sent.append((f"{name} {path}", response))
        # Headers under the limit (12 KB, and a long bearer token) are still served.
        fine = await client.get("/healthz", headers={"X-Padding": "x" * 12_000})
        assert fine.status_code == 200, (name, fine.status_code)
    no_misses(problems(sent, statuses=range(431, 432)))


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """``app`` (its lifespan already running) behind a real uvicorn on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_over_the_wire_a_200_kb_header_is_431_and_bad_paths_are_4xx(shop: Apps) -> None:
    sent, big = [], []
    for name, client in shop.items():
        async with served(app_of(client)) as url, httpx.AsyncClient(base_url=url) as http:
            padded = await http.get("/healthz", headers={"X-Padding": BIG_HEADER})
            big.append((f"{name} 200 KB header", padded))
            if name == "inventory":
                for sku in ("%FF", "%ED%A0%80", "%00", "%C0%AF"):
                    sent.append((sku, await http.get(f"/stock/{sku}")))
                    sent.append(
                        (
                            f"PUT {sku}",
                            await http.put(
                                f"/stock/{sku}", json={"available": 1}, headers=operator()
                            ),
                        )
                    )
            if name == "order":
                bad = order_with(("customer_id",), '"\\ud800"')
                sent.append(
                    (
                        "surrogate over the wire",
                        await http.post(
                            "/orders", content=bad, headers={**JSON, **customer("c-1")}
                        ),
                    )
                )
    no_misses(problems(big, statuses=range(431, 432)) + problems(sent))


def routes(app: FastAPI) -> dict[str, set[str]]:
    """Every documented path, with example parameters, and its documented methods."""
    examples = {"{sku}": "KEYBOARD-01", "{order_id}": str(uuid.uuid4())}
    found = {}
    for path, operations in app.openapi()["paths"].items():
        concrete = path
        for name, value in examples.items():
            concrete = concrete.replace(name, value)
        found[concrete] = {method.upper() for method in operations}
    return found


async def test_head_and_options_are_answered_on_every_route(shop: Apps) -> None:
    misses = []
    for name, client in shop.items():
        for path, methods in routes(app_of(client)).items():
            options = await client.options(path)
            allow = {m.strip() for m in options.headers.get("allow", "").split(",") if m.strip()}
            if options.status_code >= 500 or not methods | {"OPTIONS"} <= allow:
                misses.append((name, "OPTIONS", path, options.status_code, sorted(allow)))
            if "GET" in methods:
                got, head = await client.get(path), await client.head(path)
                if head.status_code != got.status_code or head.content != b"":
                    misses.append((name, "HEAD", path, head.status_code, got.status_code))
            # A method the route does not have: 405 naming every one it has.
            other = await client.request("DELETE", path)
            allow = {m.strip() for m in other.headers.get("allow", "").split(",") if m.strip()}
            if other.status_code != 405 or not methods <= allow:
                misses.append((name, "DELETE", path, other.status_code, sorted(allow)))
    no_misses(misses)


async def test_openapi_documents_the_error_answers_and_metrics_as_text(shop: Apps) -> None:
    misses = []
    for name, client in shop.items():
        document = (await client.get("/openapi.json")).json()
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                documented = set(operation["responses"])
                expected = {"431"}
                if "requestBody" in operation:
                    expected |= {"400", "413", "422"}
                if operation.get("security"):
                    expected |= {"401", "403"}
                if operation.get("parameters"):
                    expected |= {"422"}
                if not expected <= documented:
                    misses.append((name, method, path, sorted(expected - documented)))
        metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
        if set(metrics) != {"text/plain"}:
            misses.append((name, "metrics", sorted(metrics)))
        served_type = (await client.get("/metrics")).headers["content-type"]
        if not served_type.startswith("text/plain"):
            misses.append((name, "metrics served as", served_type))
    no_misses(misses)
