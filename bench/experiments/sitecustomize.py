"""Prototype changes to the services, measured without editing them.

The bench puts this directory first on the services' PYTHONPATH when a
``BENCH_X_*`` variable is given (``python -m bench --env BENCH_X_PRE_PING=0``);
Python imports ``sitecustomize`` at start-up, before the service's code, so the
patches below apply to that run's service processes only. Each knob mirrors a
one-line change proposed in docs/benchmarks.md:

- ``BENCH_X_PRE_PING=0``: ``pool_pre_ping=False`` (SQLAlchemy's asyncpg ping is
  BEGIN; ``;``; ROLLBACK: three round trips on every pool checkout).
- ``BENCH_X_POOL_SIZE=N`` / ``BENCH_X_MAX_OVERFLOW=M``: pool sizing (overflow
  connections are opened and closed again for every checkout beyond the pool).
- ``BENCH_X_ACCESS_LOG=0``: no uvicorn access log line per request.
- ``BENCH_X_STATIC_SQL=1``: ``inbox.claim`` and ``outbox.add`` with statements
  built once, values passed as parameters (``static_sql.py``).
"""

from __future__ import annotations

import os

_KNOBS = {k: v for k, v in os.environ.items() if k.startswith("BENCH_X_")}

if _KNOBS:
    import service_kit.database as _database
    import service_kit.runtime as _runtime
    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

    def _create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
        size = int(_KNOBS.get("BENCH_X_POOL_SIZE", pool_size))
        return create_async_engine(
            url,
            pool_size=size,
            max_overflow=int(_KNOBS.get("BENCH_X_MAX_OVERFLOW", size)),
            pool_pre_ping=_KNOBS.get("BENCH_X_PRE_PING", "1") != "0",
            pool_timeout=_database.CONNECT_TIMEOUT,
            connect_args={
                "timeout": _database.CONNECT_TIMEOUT,
                "command_timeout": _database.STATEMENT_TIMEOUT,
            },
        )

    # runtime.py bound the name at import: patch it where it is looked up.
    _database.create_engine = _create_engine
    _runtime.create_engine = _create_engine  # type: ignore[attr-defined]

    if _KNOBS.get("BENCH_X_ACCESS_LOG") == "0":
        import uvicorn

        _run = uvicorn.run

        def _run_quietly(*args: object, **kwargs: object) -> None:
            kwargs["access_log"] = False
            _run(*args, **kwargs)  # type: ignore[arg-type]

        uvicorn.run = _run_quietly  # type: ignore[assignment]
        import service_kit.app as _app

        _app.uvicorn.run = _run_quietly  # type: ignore[attr-defined]

if _KNOBS.get("BENCH_X_STATIC_SQL") == "1":
    # inbox.claim and outbox.add with statements built once (static_sql.py).
    import events.inbox as _inbox
    import events.outbox as _outbox
    import static_sql as _static

    _inbox.claim = _static.claim
    _outbox.add = _static.add
