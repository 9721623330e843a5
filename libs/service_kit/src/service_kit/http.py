"""HTTP edge pieces every service shares: header and body limits, strict JSON bodies,
HEAD/OPTIONS/405, 4xx answers that always render, 503 mapping, tracing."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from email.message import Message as MimeHeader
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.utils import is_body_allowed_for_status_code
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service_kit.database import UNAVAILABLE_ERRORS, is_unavailable, why_unavailable
from service_kit.inputs import check_json_body, printable

log = structlog.get_logger("service_kit.http")

RETRY_AFTER_SECONDS = "5"
# All request header lines together (names, values, separators). A maximal bearer
# token (8 KiB) fits with room to spare; nginx's default allows 8 KiB per line.
MAX_HEADER_BYTES = 16 * 1024


class BodySizeLimit:
    """413 for bodies over ``max_bytes``, counted as they arrive (chunked too)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"request body too large (limit {self.max_bytes} bytes)"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, {"detail": detail})
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException, so FastAPI answers 413 itself rather than
                    # reporting a body it could not parse (400).
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, limited_receive, send)


async def _send_json(
    send: Send, status: int, payload: object, *, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: FastAPI) -> None:
    """503 + Retry-After when the database cannot be reached.

    Registered for the database/connection error classes only: a handler for
    ``Exception`` would run in Starlette's outermost middleware, which re-raises.
    """

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        if not is_unavailable(exc):
            log.error("http.database_error", path=request.url.path, error=repr(exc))
            return JSONResponse({"detail": "internal error"}, status_code=500)
        why = why_unavailable(exc)
        log.warning("http.database_unavailable", path=request.url.path, why=why, error=repr(exc))
        return JSONResponse(
            {"detail": f"database unavailable, try again shortly: {why}"},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    errors: tuple[type[Exception], ...] = (sa_exc.DBAPIError, *UNAVAILABLE_ERRORS)
    for error in errors:
        app.add_exception_handler(error, on_database_error)


class HeaderSizeLimit:
    """431 when the request's header fields together exceed ``max_bytes``.

    uvicorn's default parser (httptools) sets no limit of its own, so the app does;
    h11 answers 400 itself beyond ``h11_max_incomplete_event_size``, which the service
    sets well above this limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.max_bytes:
                detail = (
                    f"request header fields too large: {size} bytes"
                    f" (limit {self.max_bytes} bytes for all of them together)"
                )
                await _send_json(send, 431, {"detail": detail}, headers=[(b"connection", b"close")])
                return
        await self.app(scope, receive, send)


def _routes(scope: Scope) -> list[tuple[RouteContext, Match]]:
    """The app's routes (included routers flattened, as FastAPI's OpenAPI sees them)
    whose path matches this request; FULL when the method matches too."""
    matched = []
    for route in iter_route_contexts(scope["app"].router.routes):
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            matched.append((route, match))
    return matched


class MethodDispatch:
    """HEAD and OPTIONS on every path, and a 405 whose ``Allow`` names every method.

    HEAD is answered as the GET would be, without its body; OPTIONS is 204 with
    ``Allow``; any other method a path does not have is 405 with ``Allow`` listing all
    of the path's methods (Starlette names only those of the first route it tried)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        matched = _routes(scope)
        if not matched or any(match is Match.FULL for _, match in matched):
            await self.app(scope, receive, send)  # unknown path (404), or a route takes it
            return
        methods = {m for route, _ in matched for m in route.methods or ()}
        if "GET" in methods:
            methods.add("HEAD")
        allow = [(b"allow", ", ".join(sorted(methods | {"OPTIONS"})).encode())]
        method = scope["method"]
        if method == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": allow})
            await send({"type": "http.response.body", "body": b""})
        elif method == "HEAD" and "GET" in methods:
            await self.app({**scope, "method": "GET"}, receive, _without_body(send))
        else:
            await _send_json(send, 405, {"detail": "Method Not Allowed"}, headers=allow)


def _without_body(send: Send) -> Send:
    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_head


class StrictJSONBodies:
    """Refuses, before FastAPI parses it, a JSON body that is not UTF-8 (400) or holds
    what JSON cannot carry: lone surrogates, NaN, ±Infinity, numbers out of range, deep
    nesting (422 naming each field, in FastAPI's ``detail`` list). Only for requests
    whose route reads a JSON body; the body is read once and handed on unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _reads_json_body(scope):
            await self.app(scope, receive, send)
            return
        chunks = []
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client is gone: nobody to answer
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except HTTPException as exc:  # BodySizeLimit's 413, raised while reading
            await _send_json(send, exc.status_code, {"detail": exc.detail})
            return
        body = b"".join(chunks)
        refusal = check_json_body(body) if body else None
        if refusal is not None:
            await _send_json(send, refusal.status, {"detail": refusal.detail})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _reads_json_body(scope: Scope) -> bool:
    """As FastAPI decides: a route with a body, and a JSON content type."""
    routes = [route for route, match in _routes(scope) if match is Match.FULL]
    if not routes or getattr(routes[0], "body_field", None) is None:
        return False
    # The first Content-Type, as Starlette's request.headers reads it.
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), None)
    if not content_type:
        return False
    parsed = MimeHeader()
    parsed["content-type"] = content_type.decode("latin-1")
    subtype = parsed.get_content_subtype()
    return parsed.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def renderable(value: Any, *, depth: int = 0) -> Any:
    """``value`` made safe for a JSON answer: lone surrogates and undecodable bytes
    escaped, NaN and ±Infinity as strings, nesting cut short."""
    if depth > 16:
        return "…"
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {
            renderable(k, depth=depth + 1): renderable(v, depth=depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [renderable(item, depth=depth + 1) for item in value]
    return value


def install_input_error_handlers(app: FastAPI) -> None:
    """FastAPI's 422 and HTTPException answers, rendered whatever the input echoed in
    them (before, a 422 quoting a lone surrogate or NaN could not be encoded: 500)."""

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": jsonable_encoder(renderable(exc.errors()))}, status_code=422)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = getattr(exc, "headers", None)
        if not is_body_allowed_for_status_code(exc.status_code):
            return Response(status_code=exc.status_code, headers=headers)
        return JSONResponse(
            {"detail": jsonable_encoder(renderable(exc.detail))},
            status_code=exc.status_code,
            headers=headers,
        )

    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
