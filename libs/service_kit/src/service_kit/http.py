"""HTTP edge pieces every service shares: body limit, 503 mapping, tracing."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service_kit.database import is_unavailable

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
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            if too_large:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = b'{"detail":"request body too large (limit %d bytes)"}' % self.max_bytes
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


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
    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        if is_unavailable(exc):
            log.warning("http.database_unavailable", path=request.url.path, error=repr(exc))
            return JSONResponse(
                {"detail": "database unavailable, try again shortly"},
                status_code=503,
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        log.exception("http.unhandled_error", path=request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    app.add_exception_handler(Exception, on_error)


def problem(detail: Any, status: int) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)
