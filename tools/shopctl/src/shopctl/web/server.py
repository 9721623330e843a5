"""Serve the web view with uvicorn until Ctrl-C or SIGTERM, then stop gracefully.

Server-sent event streams never end by themselves, and uvicorn waits for open
responses before it runs the lifespan's shutdown; so a stop first ends every
stream (browsers reconnect to whoever serves next), then lets uvicorn shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator

import uvicorn

from shopctl.web.app import WebState, create_app
from shopctl.web.settings import WebSettings

GRACEFUL_SHUTDOWN = 5  # seconds open requests get once streams have ended


class WebServer:
    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self._server = _Server(
            uvicorn.Config(
                self.app,
                host=settings.host,
                port=settings.port,
                log_config=None,  # shopctl's logging renders uvicorn's lines too
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
            )
        )

    @property
    def state(self) -> WebState:
        state: WebState = self.app.state.web
        return state

    @property
    def started(self) -> bool:
        return self._server.started

    async def serve(self) -> None:
        await self._server.serve()

    def stop(self) -> None:
        self.state.hub.close()
        self._server.should_exit = True


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # ``serve`` handles the signals itself, so that a stop ends the streams first.
        yield


async def serve(settings: WebSettings, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Run until SIGINT or SIGTERM."""
    server = WebServer(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.stop)
    if on_ready is not None:
        on_ready(settings.url)
    await server.serve()
