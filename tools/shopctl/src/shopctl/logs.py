"""shopctl's logging: the shop's shared setup, on stderr (stdout is the command's output)."""

from __future__ import annotations

import logging

from events import configure_logging as configure_shop_logging


def configure_logging(*, level: str = "INFO", fmt: str = "console") -> None:
    configure_shop_logging(
        service="shopctl",
        level=level,
        fmt=fmt,
        quiet=("aio_pika", "aiormq", "asyncio", "httpx", "httpcore", "mail.log"),
    )
    # aiormq logs a lost connection as an error with a traceback; shopctl reports
    # connection problems itself, in one line. Shown again with LOG_LEVEL=DEBUG.
    root = logging.getLogger()
    logging.getLogger("aiormq").setLevel(
        logging.DEBUG if root.level <= logging.DEBUG else logging.CRITICAL
    )
