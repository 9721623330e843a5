"""What ``shopctl web`` is started with; the defaults suit a machine set up by ``make run``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shopctl import config
from shopctl.keys import DEFAULT_DIR
from shopctl.web.broker import DEFAULT_COUNT_INTERVAL
from shopctl.web.stream import DEFAULT_CAPACITY

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090


@dataclass(frozen=True, slots=True)
class WebSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    amqp_url: str = config.DEFAULT_AMQP_URL
    order_url: str = config.DEFAULT_ORDER_URL
    secrets: Path = DEFAULT_DIR  # the development keys, for tokens signed per call
    operator_token: str | None = None  # an operator's token given outright
    broker_user_prefix: str = ""  # of the services' broker users (tests)
    count_interval: float = DEFAULT_COUNT_INTERVAL  # seconds between queue counts
    client_buffer: int = DEFAULT_CAPACITY  # updates held per browser before dropping

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
