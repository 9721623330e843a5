"""Prototype changes to the services, measured without editing them.

The bench puts this directory first on the services' PYTHONPATH when a
``BENCH_X_*`` variable is given (``python -m bench --env BENCH_X_ACCESS_LOG=0``);
Python imports ``sitecustomize`` at start-up, before the service's code, so the
patches below apply to that run's service processes only. Knobs (the ones that
were measured and applied, pre-ping and statements built once, are gone; the
pool size is the services' own ``DB_POOL_SIZE`` now):

- ``BENCH_X_ACCESS_LOG=0``: no uvicorn access log line per request.
"""

from __future__ import annotations

import os

_KNOBS = {k: v for k, v in os.environ.items() if k.startswith("BENCH_X_")}

if _KNOBS.get("BENCH_X_ACCESS_LOG") == "0":
    import uvicorn

    _run = uvicorn.run

    def _run_quietly(*args: object, **kwargs: object) -> None:
        kwargs["access_log"] = False
        _run(*args, **kwargs)  # type: ignore[arg-type]

    uvicorn.run = _run_quietly  # type: ignore[assignment]
    import service_kit.app as _app

    _app.uvicorn.run = _run_quietly  # type: ignore[attr-defined]
