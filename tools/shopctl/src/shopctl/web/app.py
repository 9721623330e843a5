"""The web view's Starlette application: the page, its event stream and its actions.

Nothing connects at import or construction: the lifespan starts the broker watch
and the HTTP client and stops them (streams first, so browsers let go).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import structlog
from aio_pika.abc import AbstractIncomingMessage
from shop_contract import SERVICE_NAMES
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from shopctl.config import DEFAULT_HTTP_TIMEOUT
from shopctl.errors import QueueNotFound, ShopctlError
from shopctl.web import actions
from shopctl.web.actions import BadRequest, DemoOrder, Identity, NotAllowed
from shopctl.web.broker import BrokerStatus, watch_broker
from shopctl.web.depths import QueueCount, depths_json, watched_queues
from shopctl.web.guard import action_refused, allowed_hosts
from shopctl.web.observe import observe
from shopctl.web.settings import WebSettings
from shopctl.web.stream import KEEPALIVE, Hub, Update, frame, reconnect_hint
from shopctl.web.timeline import Timelines

log = structlog.get_logger("shopctl.web")

STATIC = Path(__file__).parent / "static"
KEEPALIVE_SECONDS = 15.0  # a comment line now and then: idle proxies and dead peers notice


class WebState:
    """Everything the page shows, kept up to date from the broker."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.identity = Identity(settings.secrets, settings.operator_token)
        self.timelines = Timelines()
        self.watched = watched_queues()
        self.depths: list[dict[str, Any]] = []
        self.status = BrokerStatus(connected=False, message="connecting to the broker")
        self.hub = Hub(self.snapshot, capacity=settings.client_buffer)
        self.dead_letter_lock = asyncio.Lock()  # one peek or replay at a time
        self._client: httpx.AsyncClient | None = None
        self._watch: asyncio.Task[None] | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the web view is not running")
        return self._client

    def snapshot(self) -> Update:
        return Update(
            "snapshot",
            {
                "orders": self.timelines.as_json(),
                "depths": self.depths,
                "status": self.status.as_json(),
                "capabilities": self.identity.capabilities(),
                "services": list(SERVICE_NAMES),
                "payment_tokens": list(actions.DEMO_PAYMENT_TOKENS),
                "order_url": self.settings.order_url,
            },
        )

    def on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            seen = observe(
                message, received_at=datetime.now(UTC), prefix=self.settings.broker_user_prefix
            )
            if seen is None:
                return
            step, order = self.timelines.add(seen)
        except Exception:  # one odd message must not stop the view
            log.exception("web.message_not_shown", routing_key=message.routing_key)
            return
        self.hub.publish(Update("step", {"step": step.as_json(), "order": order.summary()}))

    def on_counts(self, counts: dict[str, QueueCount | None]) -> None:
        depths = depths_json(self.watched, counts)
        if depths != self.depths:
            self.depths = depths
            self.hub.publish(Update("depths", depths))

    def on_status(self, status: BrokerStatus) -> None:
        self.status = status
        self.hub.publish(Update("status", status.as_json()))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._client = httpx.AsyncClient(timeout=DEFAULT_HTTP_TIMEOUT)
        self._watch = asyncio.create_task(
            watch_broker(
                self.settings.amqp_url,
                on_message=self.on_message,
                on_counts=self.on_counts,
                on_status=self.on_status,
                count_interval=self.settings.count_interval,
            ),
            name="web-broker-watch",
        )
        log.info("web.started", url=self.settings.url)
        try:
            yield
        finally:
            self.hub.close()
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            await self._client.aclose()
            log.info("web.stopped")


def create_app(settings: WebSettings) -> Starlette:
    state = WebState(settings)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with state.running():
            yield

    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def stream(_: Request) -> Response:
        buffer = state.hub.subscribe()

        async def frames() -> AsyncIterator[bytes]:
            try:
                yield reconnect_hint()
                while (items := await buffer.take(timeout=KEEPALIVE_SECONDS)) is not None:
                    yield b"".join(frame(item) for item in items) if items else KEEPALIVE
            finally:
                state.hub.unsubscribe(buffer)

        return StreamingResponse(
            frames(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def snapshot(_: Request) -> Response:
        return JSONResponse(state.snapshot().data)

    async def products(_: Request) -> Response:
        return JSONResponse(await actions.products(state.client, settings.order_url))

    async def place_order(request: Request) -> Response:
        order = DemoOrder.parse(await _json(request))
        status, answer = await actions.place_order(
            state.client, settings.order_url, state.identity, order
        )
        return JSONResponse(answer, status_code=status)

    async def dead_letters(_: Request) -> Response:
        async with state.dead_letter_lock:
            return JSONResponse(await actions.dead_letters(settings.amqp_url))

    async def replay(request: Request) -> Response:
        body = await _json(request)
        queue = body.get("queue") if isinstance(body, dict) else None
        message_id = body.get("message_id") if isinstance(body, dict) else None
        if not isinstance(queue, str) or not isinstance(message_id, str):
            raise BadRequest("give queue and message_id")
        async with state.dead_letter_lock:
            result = await actions.replay(
                settings.amqp_url,
                state.identity,
                queue=queue,
                message_id=message_id,
                prefix=settings.broker_user_prefix,
            )
        if result.count:
            message = f"replayed {message_id} from {result.queue} to {result.target}"
        elif result.too_old:
            message = (
                f"left {message_id} in {result.queue}: older than the inbox retention, so a"
                " replay could act twice (use `shopctl dlq replay --force` to insist)"
            )
        else:
            return _error(404, f"no message {message_id} in {queue}")
        return JSONResponse(
            {"replayed": result.count, "too_old": len(result.too_old), "message": message}
        )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"broker": state.status.as_json(), "browsers": state.hub.subscribers})

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/healthz", healthz),
            Route("/api/stream", stream),
            Route("/api/state", snapshot),
            Route("/api/products", products),
            Route("/api/orders", _action(place_order), methods=["POST"]),
            Route("/api/dead-letters", dead_letters),
            Route("/api/dead-letters/replay", _action(replay), methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings.host))],
        exception_handlers={
            BadRequest: _handler(400),
            NotAllowed: _handler(403),
            QueueNotFound: _handler(404),
            ShopctlError: _handler(502),  # a server we depend on failed us
        },
        lifespan=lifespan,
    )
    app.state.web = state
    return app


Endpoint = Callable[[Request], Awaitable[Response]]


def _action(endpoint: Endpoint) -> Endpoint:
    """State-changing endpoints: JSON from this page only (see ``guard``)."""

    async def guarded(request: Request) -> Response:
        refused = action_refused(request.headers, scheme=request.url.scheme)
        if refused is not None:
            return _error(403, refused)
        return await endpoint(request)

    return guarded


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise BadRequest("the body is not JSON") from None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _handler(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(_: Request, exc: Exception) -> Response:
        return _error(status, str(exc))

    return handle
