"""Structured logs: ``console`` for people, ``json`` for machines.

structlog renders our own lines and those of the standard library (uvicorn,
aio-pika, alembic) alike. Context bound by the events library (event type, id,
correlation and causation id) appears on every line logged while handling one.
"""

from __future__ import annotations

import logging
import sys

import structlog

QUIET_LOGGERS = ("aio_pika", "aiormq", "asyncio")


def configure_logging(
    *,
    service: str,
    level: str = "INFO",
    fmt: str = "console",
    quiet: tuple[str, ...] = QUIET_LOGGERS,
) -> None:
    """Render structlog's and the standard library's lines alike, to stderr."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    # Lines carry no caller, thread or process fields, so the standard library
    # need not collect them per record (its documented optimisation knobs; the
    # caller lookup walks the stack on every line).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter stays out of the event flow unless asked for.
    for noisy in quiet:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _add_service(service: str) -> structlog.types.Processor:
    def add(_: object, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add
