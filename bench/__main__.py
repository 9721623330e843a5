import sys

try:
    import rich  # noqa: F401
except ImportError:  # pragma: no cover - a setup message, not logic
    sys.exit(
        "bench needs rich (and matplotlib for charts): "
        "uv run --group bench python -m bench (or make bench)"
    )

from bench.cli import main

sys.exit(main())
