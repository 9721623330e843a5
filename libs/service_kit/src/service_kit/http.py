"""HTTP edge pieces every service shares: body limit, 503 mapping, tracing."""

from __future__ import annotations

import json

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service_kit.database import UNAVAILABLE_ERRORS, is_unavailable, why_unavailable

log = structlog.get_logger("service_kit.http")
tracer = trace.get_tracer("service_kit.http")

RETRY_AFTER_SECONDS = "5"


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


async def _send_json(send: Send, status: int, payload: object) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


class TraceRequests:
    """A server span per request, continuing an incoming W3C ``traceparent``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        name = f"{scope['method']} {scope['path']}"
        with tracer.start_as_current_span(
            name, context=propagate.extract(carrier), kind=SpanKind.SERVER
        ):
            await self.app(scope, receive, send)


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
